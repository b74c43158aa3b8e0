// Package e2e holds kiln's end-to-end tests against real peers: podman and ko.
package e2e
