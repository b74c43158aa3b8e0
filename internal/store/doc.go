// Package store keeps images in an OCI image layout on disk, written atomically.
package store
