// Package server is cmd/server: its flags, the HTTP server and its limits
// (connections, timeouts, pacing), health and version endpoints, and the
// embedded registry over the store, with garbage collected on a schedule.
package server
