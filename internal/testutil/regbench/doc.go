// Package regbench (test support) benchmarks OCI registries (kiln's embedded one and crane's) with one go-containerregistry client over loopback.
package regbench
