// Package sbom describes what an image contains: as an SPDX 2.3 document
// (signed, or attached unsigned as ko attaches it), the same as CycloneDX
// 1.5 JSON, or as the text of `go version -m`.
package sbom
