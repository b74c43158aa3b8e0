package testutil

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	"github.com/sigstore/sigstore/pkg/signature"
)

// ECDSAKey makes a fresh ECDSA P-256 key, the kind cosign makes, and its
// SHA-256 signer-verifier. It is in memory only: a test of key files
// (scrypt, slow) uses internal/keys instead.
func ECDSAKey(t testing.TB) (*ecdsa.PrivateKey, signature.SignerVerifier) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sv, err := signature.LoadECDSASignerVerifier(k, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return k, sv
}
