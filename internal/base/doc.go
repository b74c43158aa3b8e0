// Package base resolves the base image (scratch, the built-in static base, a registry reference or a local OCI layout) that kiln layers a Go binary onto.
package base
