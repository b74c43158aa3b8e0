package keys_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/kilnbuild/kiln/internal/keys"
)

var password = []byte("correct horse battery staple")

// shared is one key pair (with password) made once: scrypt is slow under -race.
var shared struct {
	once      sync.Once
	priv, pub []byte
	err       error
}

// sharedKeys copies the shared key pair into a temporary directory.
func sharedKeys(t *testing.T) (dir, priv, pub string) {
	t.Helper()
	shared.once.Do(func() { shared.priv, shared.pub, shared.err = keys.Generate(password) })
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	dir = t.TempDir()
	priv, pub = filepath.Join(dir, keys.PrivateFile), filepath.Join(dir, keys.PublicFile)
	if err := os.WriteFile(priv, shared.priv, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, shared.pub, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, priv, pub
}

// writeKeys writes a fresh key pair into a temporary directory.
func writeKeys(t *testing.T, pw []byte) (dir, priv, pub string) {
	t.Helper()
	dir = t.TempDir()
	priv, pub, err := keys.WriteFiles(dir, pw)
	if err != nil {
		t.Fatalf("WriteFiles: %v", err)
	}
	return dir, priv, pub
}

func pemType(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, rest := pem.Decode(raw)
	if block == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		t.Errorf("%s: %d bytes after the PEM block", path, len(rest))
	}
	return block.Type
}

func umask() os.FileMode {
	dir, err := os.MkdirTemp("", "umask")
	if err != nil {
		return 0
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, nil, 0o777); err != nil {
		return 0
	}
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return 0o777 &^ fi.Mode().Perm()
}

func TestWriteFiles(t *testing.T) {
	dir, priv, pub := writeKeys(t, password)
	if want := filepath.Join(dir, "cosign.key"); priv != want {
		t.Errorf("private key path = %s, want %s", priv, want)
	}
	if want := filepath.Join(dir, "cosign.pub"); pub != want {
		t.Errorf("public key path = %s, want %s", pub, want)
	}
	mask := umask()
	for _, tc := range []struct {
		path    string
		mode    os.FileMode
		pemType string
	}{
		{priv, 0o600 &^ mask, "ENCRYPTED SIGSTORE PRIVATE KEY"},
		{pub, 0o644 &^ mask, "PUBLIC KEY"},
	} {
		fi, err := os.Stat(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode(); got != tc.mode {
			t.Errorf("%s: mode %v, want %v", filepath.Base(tc.path), got, tc.mode)
		}
		if got := pemType(t, tc.path); got != tc.pemType {
			t.Errorf("%s: PEM type %q, want %q", filepath.Base(tc.path), got, tc.pemType)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Errorf("dir holds %d entries, want 2 (no temporary files)", len(entries))
	}
}

// TestSignAndVerify: the signer loaded from cosign.key makes ASN.1 ECDSA
// P-256 signatures over SHA-256 that the verifier from cosign.pub (and the
// standard library, given the public key) accepts.
func TestSignAndVerify(t *testing.T) {
	_, priv, pub := writeKeys(t, password)
	sv, err := keys.LoadSigner(priv, password)
	if err != nil {
		t.Fatalf("LoadSigner: %v", err)
	}
	v, err := keys.LoadVerifier(pub)
	if err != nil {
		t.Fatalf("LoadVerifier: %v", err)
	}
	msg := []byte(`{"critical":{}}`)
	sig, err := sv.SignMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	if err := v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(msg)); err != nil {
		t.Errorf("verifier rejects the signer's signature: %v", err)
	}
	if err := v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(append(msg, ' '))); err == nil {
		t.Error("verifier accepts the signature over another message")
	}

	pk, err := v.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	ec, ok := pk.(*ecdsa.PublicKey)
	if !ok || ec.Curve != elliptic.P256() {
		t.Fatalf("public key is %T, want ECDSA P-256", pk)
	}
	h := sha256.Sum256(msg)
	if !ecdsa.VerifyASN1(ec, h[:], sig) {
		t.Error("signature is not ASN.1 ECDSA over SHA-256 of the message")
	}
	spk, err := sv.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := cryptoutils.EqualKeys(spk, pk); err != nil {
		t.Errorf("cosign.key and cosign.pub do not match: %v", err)
	}
}

func TestWriteFilesRefusesToOverwrite(t *testing.T) {
	for _, existing := range [][]string{
		{keys.PrivateFile, keys.PublicFile},
		{keys.PrivateFile},
		{keys.PublicFile},
	} {
		t.Run(strings.Join(existing, "+"), func(t *testing.T) {
			dir := t.TempDir()
			before := map[string]string{}
			for _, name := range existing {
				content := "keep me: " + name
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o640); err != nil {
					t.Fatal(err)
				}
				before[name] = content
			}
			priv, pub, err := keys.WriteFiles(dir, password)
			if !errors.Is(err, keys.ErrExists) {
				t.Fatalf("WriteFiles over %v: err = %v, want ErrExists", existing, err)
			}
			if priv != "" || pub != "" {
				t.Errorf("WriteFiles returned paths %q, %q with an error", priv, pub)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != len(existing) {
				t.Errorf("dir holds %d entries, want %d: nothing may be added", len(entries), len(existing))
			}
			for name, content := range before {
				got, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != content {
					t.Errorf("%s changed to %q", name, got)
				}
			}
		})
	}
}

func TestWriteFilesMissingDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nope")
	if _, _, err := keys.WriteFiles(dir, password); err == nil {
		t.Fatal("WriteFiles into a missing directory succeeded")
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("WriteFiles created %s: %v", dir, err)
	}
}

// TestEmptyPassword: a nil password is the empty password; the key is
// still encrypted (cosign refuses plain keys) and loads with "" but not
// with another password.
func TestEmptyPassword(t *testing.T) {
	for _, tc := range []struct {
		name      string
		write     []byte
		load      []byte
		wantError error
	}{
		{"nil/nil", nil, nil, nil},
		{"empty/nil", []byte{}, nil, nil},
		{"other/nil", []byte("x"), nil, keys.ErrWrongPassword},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, priv, _ := writeKeys(t, tc.write)
			if got := pemType(t, priv); got != "ENCRYPTED SIGSTORE PRIVATE KEY" {
				t.Errorf("PEM type %q, want an encrypted key", got)
			}
			_, err := keys.LoadSigner(priv, tc.load)
			if !errors.Is(err, tc.wantError) || (err != nil) != (tc.wantError != nil) {
				t.Errorf("LoadSigner: err = %v, want %v", err, tc.wantError)
			}
		})
	}
}

// TestLegacyPEMType: keys written by older cosign versions carry the PEM
// type "ENCRYPTED COSIGN PRIVATE KEY" around the same encrypted JSON.
func TestLegacyPEMType(t *testing.T) {
	dir, priv, pub := sharedKeys(t)
	raw, err := os.ReadFile(priv)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(raw)
	legacy := filepath.Join(dir, "legacy.key")
	if err := os.WriteFile(legacy, pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED COSIGN PRIVATE KEY", Bytes: block.Bytes}), 0o600); err != nil {
		t.Fatal(err)
	}
	sv, err := keys.LoadSigner(legacy, password)
	if err != nil {
		t.Fatalf("LoadSigner(legacy PEM type): %v", err)
	}
	v, err := keys.LoadVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := sv.SignMessage(strings.NewReader("m"))
	if err != nil {
		t.Fatal(err)
	}
	if err := v.VerifySignature(bytes.NewReader(sig), strings.NewReader("m")); err != nil {
		t.Errorf("legacy key's signature does not verify with cosign.pub: %v", err)
	}
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func encryptedKey(t *testing.T, dir, name string, key crypto.PrivateKey) string {
	t.Helper()
	der, err := cryptoutils.MarshalPrivateKeyToEncryptedDER(key, cryptoutils.StaticPasswordFunc(password))
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, dir, name, "ENCRYPTED SIGSTORE PRIVATE KEY", der)
}

func TestLoadSignerErrors(t *testing.T) {
	dir, priv, pub := sharedKeys(t)
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := cryptoutils.MarshalPrivateKeyToDER(p256)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(p256)
	if err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage.key")
	if err := os.WriteFile(garbage, []byte("this is not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	corrupt := writePEM(t, dir, "corrupt.key", "ENCRYPTED SIGSTORE PRIVATE KEY", []byte("{not json"))

	for _, tc := range []struct {
		name     string
		path     string
		password []byte
		want     error
		mention  []string
	}{
		{"missing file", filepath.Join(dir, "missing.key"), password, os.ErrNotExist, []string{"missing.key"}},
		{"wrong password", priv, []byte("wrong"), keys.ErrWrongPassword, []string{"COSIGN_PASSWORD", "cosign.key"}},
		{"plain PRIVATE KEY", writePEM(t, dir, "pkcs8.key", "PRIVATE KEY", pkcs8), password, keys.ErrPlainPrivateKey, []string{"PRIVATE KEY", "import-key-pair"}},
		{"plain EC PRIVATE KEY", writePEM(t, dir, "sec1.key", "EC PRIVATE KEY", sec1), password, keys.ErrPlainPrivateKey, []string{"EC PRIVATE KEY"}},
		{"encrypted RSA", encryptedKey(t, dir, "rsa.key", rsaKey), password, keys.ErrUnsupportedKey, []string{"rsa.PrivateKey", "P-256"}},
		{"encrypted P-384", encryptedKey(t, dir, "p384.key", p384), password, keys.ErrUnsupportedKey, []string{"ECDSA P-384"}},
		{"encrypted ed25519", encryptedKey(t, dir, "ed.key", edKey), password, keys.ErrUnsupportedKey, []string{"ed25519"}},
		{"garbage", garbage, password, keys.ErrNotAPrivateKey, []string{"no PEM block"}},
		{"public key as private", pub, password, keys.ErrNotAPrivateKey, []string{`"PUBLIC KEY"`}},
		{"corrupt encrypted key", corrupt, password, keys.ErrNotAPrivateKey, []string{"corrupt.key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sv, err := keys.LoadSigner(tc.path, tc.password)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if sv != nil {
				t.Error("a signer came back with the error")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			for _, m := range tc.mention {
				if !strings.Contains(msg, m) {
					t.Errorf("error %q does not mention %q", msg, m)
				}
			}
		})
	}
}

func TestLoadVerifierErrors(t *testing.T) {
	dir, priv, _ := sharedKeys(t)
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pubFile := func(name string, pub crypto.PublicKey) string {
		der, err := cryptoutils.MarshalPublicKeyToDER(pub)
		if err != nil {
			t.Fatal(err)
		}
		return writePEM(t, dir, name, "PUBLIC KEY", der)
	}
	garbage := filepath.Join(dir, "garbage.pub")
	if err := os.WriteFile(garbage, []byte("not a key"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		path    string
		want    error
		mention string
	}{
		{"missing file", filepath.Join(dir, "missing.pub"), os.ErrNotExist, "missing.pub"},
		{"ed25519", pubFile("ed.pub", edPub), keys.ErrUnsupportedKey, "ed25519"},
		{"P-384", pubFile("p384.pub", p384.Public()), keys.ErrUnsupportedKey, "ECDSA P-384"},
		{"garbage", garbage, keys.ErrNotAPublicKey, "garbage.pub"},
		{"private key", priv, keys.ErrNotAPublicKey, "cosign.key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := keys.LoadVerifier(tc.path)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if v != nil {
				t.Error("a verifier came back with the error")
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("error %q does not mention %q", err, tc.mention)
			}
		})
	}
}

func TestGenerate(t *testing.T) {
	_, privPath, pubPath := sharedKeys(t)
	priv1, err := os.ReadFile(privPath)
	if err != nil {
		t.Fatal(err)
	}
	pub1, err := os.ReadFile(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	priv2, pub2, err := keys.Generate(password)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(priv1, priv2) || bytes.Equal(pub1, pub2) {
		t.Error("two calls made the same key")
	}
	pk, err := cryptoutils.UnmarshalPEMToPublicKey(pub1)
	if err != nil {
		t.Fatal(err)
	}
	if ec, ok := pk.(*ecdsa.PublicKey); !ok || ec.Curve != elliptic.P256() {
		t.Errorf("public key is %T, want ECDSA P-256", pk)
	}
	key, err := cryptoutils.UnmarshalPEMToPrivateKey(priv1, cryptoutils.StaticPasswordFunc(password))
	if err != nil {
		t.Fatal(err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		t.Fatalf("private key is %T", key)
	}
	if err := cryptoutils.EqualKeys(ec.Public(), pk); err != nil {
		t.Errorf("the pair does not match: %v", err)
	}
}
