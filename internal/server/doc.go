// Package server is cmd/server: its flags, the HTTP server and its limits
// (connections, timeouts, pacing), health, readiness, version and metrics
// endpoints, the embedded registry over the store (garbage collected on a
// schedule), and, with --data, the build service: internal/service's API
// wired to internal/records, internal/source and a Runner (builds.go) that
// runs kiln build's request confined to the fetched source, runs the go
// command in a process group of its own (exec.go), pushes to the server's
// own registry in process, and bounds kiln's binary cache after each build.
package server
