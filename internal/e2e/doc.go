// Package e2e holds kiln's end-to-end tests against real peers: podman, ko, cosign (verify and sign interop), crane, and the OCI distribution-spec conformance suite run against kiln's registry.
package e2e
