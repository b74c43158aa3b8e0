package checked

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// MaxJSON bounds a manifest, an index or a config read into memory: 4 MiB,
// the registry's own limit for a manifest.
const MaxJSON = 4 << 20

// ErrTooLarge means a document is larger than its reader's budget.
var ErrTooLarge = errors.New("larger than the budget")

// MismatchError says that a blob's bytes are not the ones its digest names:
// the content was changed after the digest was taken.
type MismatchError struct {
	What string  // "manifest", "config", "layer", …
	Want v1.Hash // the digest that names the blob
	Got  v1.Hash // the digest of the bytes read; zero when Size says why
	// Size is the size the descriptor declares and Read what was read,
	// set when they differ.
	Size, Read int64
}

func (e *MismatchError) Error() string {
	if e.Got.Hex == "" {
		return fmt.Sprintf("%s %s: %d bytes where its descriptor declares %d: the content was changed after it was named", e.What, e.Want, e.Read, e.Size)
	}
	return fmt.Sprintf("%s %s: its bytes hash to %s: the content was changed after it was named", e.What, e.Want, e.Got)
}

// hashes are the digest algorithms blobs can be named by (the OCI image
// spec's registered ones).
var hashes = map[string]func() hash.Hash{"sha256": sha256.New, "sha512": sha512.New}

// reader hashes and counts what passes through it. It guarantees that a
// caller never sees io.EOF unless exactly the declared bytes were read and
// they hash to the digest: otherwise the read that would end the stream
// returns a *MismatchError instead. A reader closed early checks nothing,
// so a consumer must read to io.EOF to learn that the content was sound.
type reader struct {
	rc   io.ReadCloser
	what string
	want v1.Hash
	size int64 // declared; < 0 when unknown
	h    hash.Hash
	n    int64
	err  error // sticky: the end's verdict
}

// Reader wraps rc, the blob named want of the declared size (size < 0:
// unknown), so that reading it to the end checks it. It never reads more
// than size+1 bytes from rc.
func Reader(rc io.ReadCloser, what string, want v1.Hash, size int64) (io.ReadCloser, error) {
	newHash, ok := hashes[want.Algorithm]
	if !ok {
		rc.Close()
		return nil, fmt.Errorf("%s %s: unknown digest algorithm %q", what, want, want.Algorithm)
	}
	return &reader{rc: rc, what: what, want: want, size: size, h: newHash()}, nil
}

func (r *reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.size >= 0 && int64(len(p)) > r.size-r.n+1 {
		p = p[:r.size-r.n+1] // one byte past the end shows a longer blob
	}
	n, err := r.rc.Read(p)
	r.h.Write(p[:n])
	r.n += int64(n)
	if r.size >= 0 && r.n > r.size {
		r.err = &MismatchError{What: r.what, Want: r.want, Size: r.size, Read: r.n}
		return n - int(r.n-r.size), r.err
	}
	if err == io.EOF {
		r.err = r.verdict()
		return n, r.err
	}
	return n, err
}

func (r *reader) verdict() error {
	if r.size >= 0 && r.n != r.size {
		return &MismatchError{What: r.what, Want: r.want, Size: r.size, Read: r.n}
	}
	if got := (v1.Hash{Algorithm: r.want.Algorithm, Hex: hex.EncodeToString(r.h.Sum(nil))}); got != r.want {
		return &MismatchError{What: r.what, Want: r.want, Got: got}
	}
	return io.EOF
}

func (r *reader) Close() error { return r.rc.Close() }

// ReadAll reads the blob want from rc whole, at most limit bytes, and
// checks it. size < 0 means the size is not declared.
func ReadAll(rc io.ReadCloser, what string, want v1.Hash, size, limit int64) ([]byte, error) {
	if size > limit {
		rc.Close()
		return nil, fmt.Errorf("%s %s: %d bytes: %w of %d bytes", what, want, size, ErrTooLarge, limit)
	}
	r, err := Reader(rc, what, want, size)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s %s: %w of %d bytes", what, want, ErrTooLarge, limit)
	}
	return b, nil
}

// Drain reads r to its end, so that a checking reader gives its verdict.
func Drain(r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}
