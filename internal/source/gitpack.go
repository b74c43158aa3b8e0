package source

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
)

// go-git reads every object of a pack whole into memory while it indexes
// the pack, and each blob whole again when it checks it out, before a byte
// of it is written where the budget counts. A small pack can declare a
// blob of gigabytes (zeros compress about 1000:1), so the sizes the pack
// declares are checked against what is left of the budget first, with
// nothing inflated into memory.

// spoolPack copies a pack as received into a temporary file and checks
// it (checkPack). The caller reads the pack from the file, then closes
// and removes it (see dropPack).
func spoolPack(pack io.Reader, b *budget) (*os.File, error) {
	f, err := os.CreateTemp("", "kiln-git-pack-*")
	if err != nil {
		return nil, fmt.Errorf("receiving the git pack: %w", err)
	}
	if _, err := io.Copy(f, pack); err != nil {
		dropPack(f)
		if errors.Is(err, ErrInvalid) {
			return nil, err
		}
		return nil, fmt.Errorf("receiving the git pack: %w", err)
	}
	if err := checkSpooled(f, b); err != nil {
		dropPack(f)
		return nil, err
	}
	return f, nil
}

// checkSpooled checks the pack in f from its start, and leaves f at its
// start again for the reader that follows.
func checkSpooled(f *os.File, b *budget) error {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("receiving the git pack: %w", err)
	}
	if err := checkPack(f, b); err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("receiving the git pack: %w", err)
	}
	return nil
}

func dropPack(f *os.File) {
	f.Close()
	os.Remove(f.Name())
}

// checkPack reads the pack's object headers and refuses an object that
// declares more bytes than b has left: a whole object's size, and for a
// delta the size of the object it makes. Each object's data is inflated
// only to step over it, into nothing, and never past the size its header
// declares.
func checkPack(r io.Reader, b *budget) error {
	s := packfile.NewScanner(r)
	_, n, err := s.Header()
	if err != nil {
		return fmt.Errorf("%w: the git pack: %v", ErrInvalid, err)
	}
	for range n {
		h, err := s.NextObjectHeader()
		if err != nil {
			return fmt.Errorf("%w: the git pack: %v", ErrInvalid, err)
		}
		if err := b.fits(h.Length); err != nil {
			return err
		}
		if h.Type != plumbing.OFSDeltaObject && h.Type != plumbing.REFDeltaObject {
			continue // the next header steps over its data
		}
		var head deltaHead
		if _, _, err := s.NextObject(&head); err != nil {
			return fmt.Errorf("%w: the git pack: %v", ErrInvalid, err)
		}
		target, ok := head.targetSize()
		if !ok {
			return fmt.Errorf("%w: the git pack holds a malformed delta", ErrInvalid)
		}
		if err := b.fits(int64(min(target, 1<<62))); err != nil {
			return err
		}
	}
	if _, err := s.Checksum(); err != nil { // steps over the last object
		return fmt.Errorf("%w: the git pack: %v", ErrInvalid, err)
	}
	return nil
}

// deltaHead keeps the first bytes of a delta, where git writes the sizes
// of its base and of its result, and discards the rest.
type deltaHead struct {
	buf [2 * binary.MaxVarintLen64]byte
	n   int
}

func (d *deltaHead) Write(p []byte) (int, error) {
	d.n += copy(d.buf[d.n:], p)
	return len(p), nil
}

// targetSize is the size of the object the delta makes: the second of
// two little-endian base-128 numbers (binary.Uvarint's encoding).
func (d *deltaHead) targetSize() (uint64, bool) {
	b := d.buf[:d.n]
	_, k := binary.Uvarint(b)
	if k <= 0 {
		return 0, false
	}
	t, k2 := binary.Uvarint(b[k:])
	return t, k2 > 0
}

// largeObject is the size past which a checkout streams a blob from the
// pack into its file instead of reading it whole into memory first.
const largeObject = 1 << 20
