// Package imageref parses the one grammar of the image references kiln reads: oci:, oci-archive:, docker-archive:, the local store's kiln.local/… and registry references.
package imageref
