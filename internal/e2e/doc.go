// Package e2e holds kiln's end-to-end tests against real peers: podman, ko, cosign (verify and sign interop), crane, helm (template output piped into resolve), and the OCI distribution-spec conformance suite run against kiln's registry.
package e2e
