package store

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Upload is a blob being received into DIR/uploads/<id> (or, while it is
// small and the layout has a journal, into memory). It becomes a blob
// only through Commit, which checks the digest first; until then nothing
// a reader can see has changed. An Upload is not safe for concurrent use.
type Upload struct {
	rs   *Repositories
	name string
	id   string
	f    *os.File // nil while the bytes are in buf
	buf  []byte
	hash hash.Hash
	size int64
	// renamed: the file became a blob
	renamed bool
}

// NewUpload starts an upload into repository name.
func (rs *Repositories) NewUpload(name string) (*Upload, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	u := &Upload{rs: rs, name: name, id: hex.EncodeToString(b[:]), hash: sha256.New()}
	if rs.journal == nil {
		if err := u.spill(); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// spill moves the upload from memory to its staging file.
func (u *Upload) spill() error {
	dir := filepath.Join(u.rs.layout.dir, "uploads")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("starting upload: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, u.id), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("starting upload: %w", err)
	}
	if _, err := f.Write(u.buf); err != nil {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("receiving upload %s: %w", u.id, err)
	}
	u.f, u.buf = f, nil
	return nil
}

// write keeps p in memory while the upload fits the journal, else in the
// staging file.
func (u *Upload) write(p []byte) (int, error) {
	if u.f == nil {
		if len(u.buf)+len(p) <= JournalMax {
			u.buf = append(u.buf, p...)
			return len(p), nil
		}
		if err := u.spill(); err != nil {
			return 0, err
		}
	}
	return u.f.Write(p)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// ID names the upload.
func (u *Upload) ID() string { return u.id }

// Repository is the repository the upload goes into.
func (u *Upload) Repository() string { return u.name }

// Size is the number of bytes received so far.
func (u *Upload) Size() int64 { return u.size }

// Write appends what r yields. Bytes received before an error count: the
// client can ask for the size and resume from there.
func (u *Upload) Write(r io.Reader) (int64, error) {
	n, err := io.Copy(io.MultiWriter(writerFunc(u.write), u.hash), r)
	u.size += n
	if err != nil {
		return n, fmt.Errorf("receiving upload %s: %w", u.id, err)
	}
	return n, nil
}

// Commit makes the upload blob h of its repository, if its bytes hash to
// h; otherwise the upload is dropped and ErrDigestInvalid returned.
func (u *Upload) Commit(h v1.Hash) error {
	defer u.Cancel() // only closes the file once it became a blob
	defer u.rs.layout.sweep.shared()()
	if !validDigest(h) {
		return fmt.Errorf("%w: %q", ErrDigestInvalid, h.String())
	}
	got := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(u.hash.Sum(nil))}
	if h.Algorithm != got.Algorithm {
		// Hashed on the way in with the canonical algorithm only: read the
		// bytes again for the rare client that asks for another.
		var r io.ReadCloser = io.NopCloser(bytes.NewReader(u.buf))
		if u.f != nil {
			f, err := os.Open(u.f.Name())
			if err != nil {
				return err
			}
			r = f
		}
		var err error
		got, err = digestReader(h.Algorithm, r)
		r.Close()
		if err != nil {
			return err
		}
	}
	if got != h {
		return fmt.Errorf("%w: upload has %s, not %s", ErrDigestInvalid, got, h)
	}
	if u.f == nil {
		// Small, and the layout has a journal: the journal makes the blob
		// and its place in the repository durable, even when the bytes
		// are already a file.
		return u.rs.journal.put(u.name, h, u.buf)
	}
	final := u.rs.layout.blobPath(h)
	if exists(final) {
		touch(final)
	} else {
		if err := u.rs.layout.syncFile(u.f); err != nil {
			return fmt.Errorf("writing blob %s: %w", h, err)
		}
		if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
			return err
		}
		if err := os.Rename(u.f.Name(), final); err != nil {
			return fmt.Errorf("writing blob %s: %w", h, err)
		}
		u.renamed = true
		if err := u.rs.layout.syncer(filepath.Dir(final)).Sync(); err != nil {
			return err
		}
	}
	return u.rs.linkBlobDurably(u.name, h)
}

// Cancel drops the upload.
func (u *Upload) Cancel() error {
	if u.f == nil {
		u.buf = nil
		return nil
	}
	u.f.Close()
	if u.renamed {
		return nil
	}
	err := os.Remove(u.f.Name())
	if os.IsNotExist(err) {
		return nil
	}
	return err
}
