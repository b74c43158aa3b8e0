// Package sbom describes what an image contains as an SPDX 2.3 document.
package sbom
