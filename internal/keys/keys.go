package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/kilnbuild/kiln/internal/oneline"
)

// File names cosign generate-key-pair writes.
const (
	PrivateFile = "cosign.key"
	PublicFile  = "cosign.pub"
)

// Errors callers can classify with errors.Is.
var (
	ErrWrongPassword   = errors.New("wrong password for the private key")
	ErrUnsupportedKey  = errors.New("unsupported key type")
	ErrExists          = errors.New("key file exists")
	ErrNotAPrivateKey  = errors.New("not a cosign private key")
	ErrNotAPublicKey   = errors.New("not a public key")
	ErrPlainPrivateKey = errors.New("unencrypted private key")
)

// Generate makes an ECDSA P-256 key pair: the private key as an
// "ENCRYPTED SIGSTORE PRIVATE KEY" PEM (scrypt + secretbox, as cosign
// writes it), the public key as a PKIX "PUBLIC KEY" PEM.
// A nil password is the empty password, as cosign treats it: the key is
// still encrypted.
func Generate(password []byte) (privPEM, pubPEM []byte, err error) {
	return cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), cryptoutils.StaticPasswordFunc(orEmpty(password)))
}

// orEmpty turns a nil password into the empty one: cryptoutils treats nil
// as "no encryption", writing a plain key and skipping decryption.
func orEmpty(password []byte) []byte {
	if password == nil {
		return []byte{}
	}
	return password
}

// WriteFiles writes cosign.key (0600) and cosign.pub (0644) into dir,
// refusing to replace either; nothing is left half-written.
func WriteFiles(dir string, password []byte) (privPath, pubPath string, err error) {
	privPath, pubPath = filepath.Join(dir, PrivateFile), filepath.Join(dir, PublicFile)
	for _, p := range []string{privPath, pubPath} {
		if _, err := os.Lstat(p); err == nil {
			return "", "", fmt.Errorf("%s: %w: move it away first", p, ErrExists)
		}
	}
	priv, pub, err := Generate(password)
	if err != nil {
		return "", "", fmt.Errorf("generating key pair: %w", err)
	}
	if err := writeNew(privPath, priv, 0o600); err != nil {
		return "", "", err
	}
	if err := writeNew(pubPath, pub, 0o644); err != nil {
		os.Remove(privPath)
		return "", "", err
	}
	return privPath, pubPath, nil
}

func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s: %w: move it away first", path, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// LoadSigner reads a cosign private key file and returns a signer over
// SHA-256. Only ECDSA P-256 keys are accepted: what cosign generates and
// what kiln's verifier expects.
func LoadSigner(path string, password []byte) (signature.SignerVerifier, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading private key: %w", err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, fmt.Errorf("%s: %w: no PEM block", path, ErrNotAPrivateKey)
	}
	switch block.Type {
	case string(cryptoutils.EncryptedSigstorePrivateKeyPEMType), "ENCRYPTED COSIGN PRIVATE KEY":
	case "PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY":
		return nil, fmt.Errorf("%s: %w (%s): encrypt it with `cosign import-key-pair`, or make one with `kiln keygen`", path, ErrPlainPrivateKey, block.Type)
	default:
		return nil, fmt.Errorf("%s: %w: PEM type %q", path, ErrNotAPrivateKey, block.Type)
	}
	key, err := cryptoutils.UnmarshalPEMToPrivateKey(raw, cryptoutils.StaticPasswordFunc(orEmpty(password)))
	if err != nil {
		if strings.Contains(err.Error(), "decrypt") {
			return nil, fmt.Errorf("%s: %w: check COSIGN_PASSWORD", path, ErrWrongPassword)
		}
		return nil, fmt.Errorf("%s: %w: %v", path, ErrNotAPrivateKey, oneline.First(err.Error()))
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%s: %w %s: kiln signs with ECDSA P-256 keys (kiln keygen, cosign generate-key-pair)", path, ErrUnsupportedKey, describe(key))
	}
	return signature.LoadECDSASignerVerifier(ec, crypto.SHA256)
}

// LoadVerifier reads a PEM public key file (cosign.pub) and returns a
// verifier over SHA-256.
func LoadVerifier(path string) (signature.Verifier, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading public key: %w", err)
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", path, ErrNotAPublicKey, oneline.First(err.Error()))
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%s: %w %s: kiln verifies ECDSA P-256 keys", path, ErrUnsupportedKey, describe(pub))
	}
	return signature.LoadECDSAVerifier(ec, crypto.SHA256)
}

func describe(key any) string {
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		return "ECDSA " + k.Curve.Params().Name
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	}
	return strings.TrimPrefix(fmt.Sprintf("%T", key), "*")
}

// PublicKeyPEM encodes v's public key as cosign.pub is encoded.
func PublicKeyPEM(v signature.Verifier) ([]byte, error) {
	pub, err := v.PublicKey()
	if err != nil {
		return nil, err
	}
	return cryptoutils.MarshalPublicKeyToPEM(pub)
}
