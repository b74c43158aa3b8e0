// Package attest signs a build's images and attaches its SBOM and SLSA provenance.
package attest
