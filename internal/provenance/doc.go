// Package provenance records how an image was built as a SLSA v1 provenance predicate.
package provenance
