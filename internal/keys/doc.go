// Package keys creates and reads signing keys in cosign's formats.
package keys
