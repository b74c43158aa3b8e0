// Package verify checks an image's cosign signatures and in-toto attestations against a public key.
package verify
