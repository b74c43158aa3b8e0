// Package publish writes built images to a destination: a registry, an OCI layout, an archive, the local store, or a container engine.
package publish
