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
	"sync/atomic"

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
	mem  *MemoryBudget // what cap(buf) is charged to; nil: no budget
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

// MemoryBudget bounds the bytes that uploads sharing it hold in memory
// (the capacity of their buffers). An upload that would exceed it spills
// to its staging file instead. It is safe for concurrent use.
type MemoryBudget struct {
	max  int64
	used atomic.Int64
}

// NewMemoryBudget returns a budget of max bytes.
func NewMemoryBudget(max int64) *MemoryBudget { return &MemoryBudget{max: max} }

// InUse is the number of bytes charged to the budget now.
func (b *MemoryBudget) InUse() int64 { return b.used.Load() }

func (b *MemoryBudget) take(n int64) bool {
	for {
		u := b.used.Load()
		if u+n > b.max {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

// LimitMemory charges the bytes u holds in memory to b: once b is spent,
// u spills to its staging file. Call it before the first Write.
func (u *Upload) LimitMemory(b *MemoryBudget) { u.mem = b }

// dropBuf forgets the in-memory bytes and gives their room back.
func (u *Upload) dropBuf() {
	if u.mem != nil {
		u.mem.used.Add(-int64(cap(u.buf)))
	}
	u.buf = nil
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
	u.f = f
	u.dropBuf()
	return nil
}

// write keeps p in memory while the upload fits the journal, else in the
// staging file.
func (u *Upload) write(p []byte) (int, error) {
	if u.f == nil {
		if need := len(u.buf) + len(p); need <= JournalMax && u.grow(need) {
			u.buf = append(u.buf, p...)
			return len(p), nil
		}
		if err := u.spill(); err != nil {
			return 0, err
		}
	}
	return u.f.Write(p)
}

// grow makes room for need bytes in buf, within the memory budget.
func (u *Upload) grow(need int) bool {
	if need <= cap(u.buf) {
		return true
	}
	c := min(max(2*cap(u.buf), need), JournalMax)
	if u.mem != nil && !u.mem.take(int64(c-cap(u.buf))) {
		return false
	}
	// Capacity rounded up to the allocation's size class, as append
	// does: a body read in two pieces then fits one buffer. (The compiler
	// makes append(nil, make(n)...) one allocation.)
	nb := append([]byte(nil), make([]byte, c)...)[:len(u.buf)]
	copy(nb, u.buf)
	if u.mem != nil {
		u.mem.used.Add(int64(cap(nb) - c)) // the rounding
	}
	u.buf = nb // the budget was charged the difference
	return true
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
		// The journal keeps the bytes (within its own bound): they
		// leave this upload's budget.
		buf := u.buf
		u.dropBuf()
		return u.rs.journal.put(u.name, h, buf)
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
		u.dropBuf()
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
