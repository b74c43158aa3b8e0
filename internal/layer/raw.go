package layer

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// rawLayer is an uncompressed layer that keeps no copy of its bytes: they
// are made again from its entries (headers, source files, padding) each
// time the layer is read, and hashed to its digest (which is its diffID)
// once, when it is built. An uncompressed layer is its sources plus a few
// headers, so writing it out would only copy them.
//
// What it guarantees: its bytes are exactly what Build writes for the same
// entries with any compression before compressing (the tar its diffID
// names), and a read never ends cleanly with other bytes. Every read hashes
// what it serves; a stream whose size or digest differs from the layer's
// ends in an error that names the source files and matches
// ErrSourceChanged, in place of io.EOF. A reader that stops early has had
// bytes not yet checked.
//
// What it needs: the source files must stay in place, unchanged, from the
// build until the last read (the pipeline reads a binary through a private
// hard link taken under the build cache's lock, kept until the run ends).
type rawLayer struct {
	plan   *tarPlan
	digest v1.Hash
}

var _ v1.Layer = (*rawLayer)(nil)

// hashRaw reads the plan's tar once, for its digest.
func hashRaw(ctx context.Context, plan *tarPlan) (*rawLayer, error) {
	r := plan.open()
	defer r.Close()
	h := sha256.New()
	n, err := copyCtx(ctx, h, r)
	if err != nil {
		return nil, err
	}
	if n != plan.size { // the reader holds every part to its size; this is a guard
		return nil, fmt.Errorf("internal error: the layer's tar is %d bytes, planned as %d", n, plan.size)
	}
	return &rawLayer{plan: plan, digest: sum(h)}, nil
}

func (l *rawLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *rawLayer) DiffID() (v1.Hash, error)            { return l.digest, nil }
func (l *rawLayer) Size() (int64, error)                { return l.plan.size, nil }
func (l *rawLayer) MediaType() (types.MediaType, error) { return types.OCIUncompressedLayer, nil }
func (l *rawLayer) Uncompressed() (io.ReadCloser, error) {
	return &verifyingReader{l: l, r: l.plan.open(), h: sha256.New()}, nil
}
func (l *rawLayer) Compressed() (io.ReadCloser, error) { return l.Uncompressed() }

// verifyingReader reads a rawLayer and checks its size and digest at the
// end, before it reports io.EOF.
type verifyingReader struct {
	l *rawLayer
	r *tarReader
	h hash.Hash
	n int64
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	switch {
	case errors.Is(err, io.EOF):
		if got := sum(v.h); v.n != v.l.plan.size || got != v.l.digest {
			what := strings.Join(v.l.plan.sources(), " or ")
			if what == "" {
				what = "an entry's data"
			}
			return n, &changedError{fmt.Sprintf("reading layer %s: %s changed after the layer was built (read %d bytes hashing to %s, want %d bytes): build again",
				v.l.digest, what, v.n, got, v.l.plan.size)}
		}
	case err != nil:
		return n, fmt.Errorf("reading layer %s: %w", v.l.digest, err)
	}
	return n, err
}

func (v *verifyingReader) Close() error { return v.r.Close() }
