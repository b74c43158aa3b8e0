// Package registry serves the store over the OCI distribution API (v1.1).
package registry
