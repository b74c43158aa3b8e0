// Package server is kiln's build service: for now its health and version endpoints.
package server
