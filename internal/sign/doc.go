// Package sign attaches cosign-compatible signatures and in-toto attestations to images.
package sign
