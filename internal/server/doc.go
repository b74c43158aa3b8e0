// Package server is cmd/server: its flags, the HTTP server and its limits
// (connections, timeouts, pacing), health and version endpoints, and the
// embedded registry over the store, with garbage collected on a schedule.
// With --data it also runs the build service (internal/service) over
// records, sources and kiln build's request: builds run the go command in
// a process group of their own and push to this registry in process.
package server
