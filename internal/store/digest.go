package store

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// algorithms are the digest algorithms the store keeps blobs under, as the
// OCI image spec registers them. sha256 is canonical; sha512 is accepted
// from clients that ask for it.
var algorithms = map[string]func() hash.Hash{"sha256": sha256.New, "sha512": sha512.New}

// validDigest reports whether h names a blob the store can keep: a known
// algorithm and exactly its length of lower-case hex, so that h.Hex is
// safe as a file name.
func validDigest(h v1.Hash) bool {
	newHash, ok := algorithms[h.Algorithm]
	if !ok || len(h.Hex) != 2*newHash().Size() {
		return false
	}
	for _, c := range []byte(h.Hex) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ParseDigest parses a digest of an algorithm the store keeps.
// go-containerregistry's parser knows sha256 alone, so the hash is built
// here.
func ParseDigest(s string) (v1.Hash, error) {
	alg, hx, _ := strings.Cut(s, ":")
	h := v1.Hash{Algorithm: alg, Hex: hx}
	if !validDigest(h) {
		return v1.Hash{}, fmt.Errorf("%w: %q (want sha256:<64 hex digits> or sha512:<128>)", ErrDigestInvalid, s)
	}
	return h, nil
}

// digestBytes hashes b with algorithm alg (which must be known).
func digestBytes(alg string, b []byte) v1.Hash {
	hh := algorithms[alg]()
	hh.Write(b)
	return v1.Hash{Algorithm: alg, Hex: hex.EncodeToString(hh.Sum(nil))}
}

// digestReader hashes what r yields with algorithm alg.
func digestReader(alg string, r io.Reader) (v1.Hash, error) {
	hh := algorithms[alg]()
	if _, err := io.Copy(hh, r); err != nil {
		return v1.Hash{}, err
	}
	return v1.Hash{Algorithm: alg, Hex: hex.EncodeToString(hh.Sum(nil))}, nil
}

// hashFromHex names a blob from the hex of a link file: the length says
// the algorithm.
func hashFromHex(hx string) v1.Hash {
	for alg := range algorithms {
		if h := (v1.Hash{Algorithm: alg, Hex: hx}); validDigest(h) {
			return h
		}
	}
	return v1.Hash{}
}

// digest decodes any digest ParseDigest accepts from JSON.
type digest v1.Hash

func (d *digest) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	h, err := ParseDigest(s)
	*d = digest(h)
	return err
}

// descriptor is a v1.Descriptor as a registry reads it from a client's
// manifest: any digest the store keeps.
type descriptor struct {
	MediaType    types.MediaType   `json:"mediaType"`
	Size         int64             `json:"size"`
	Digest       digest            `json:"digest"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

func (d descriptor) hash() v1.Hash { return v1.Hash(d.Digest) }

func (d descriptor) v1() v1.Descriptor {
	return v1.Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.hash(), ArtifactType: d.ArtifactType, Annotations: d.Annotations}
}
