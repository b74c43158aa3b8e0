package checked

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"
)

// WalkOptions say how much of an image Walk reads.
type WalkOptions struct {
	// SkipLayers reads manifests and configs only: layers are counted in
	// Report.Skipped, not read.
	SkipLayers bool
	// Jobs is how many layers are read at once (at least 1).
	Jobs int
}

// Report says what Walk read, or skipped.
type Report struct {
	Manifests int   // images and indexes read, the top one included
	Layers    int   // distinct layers read to their end
	Bytes     int64 // their compressed bytes
	Skipped   int   // distinct layers not read (SkipLayers)
	SkipBytes int64 // their declared bytes
}

// Walk reads a, an image or an index as Image and Index return them, and
// every image under it: each manifest and config is read and checked as
// its parent names it; then every distinct layer is read to its end,
// streamed, opts.Jobs at a time, unless opts.SkipLayers. It returns the
// first error, a *MismatchError when bytes differ from their digest.
//
// Walk checks what a's own methods hand out: a from Image or Index (or
// from ggcr's remote package, which checks digests as it reads) is
// checked; any other v1.Image is only read.
func Walk(ctx context.Context, a any, opts WalkOptions) (Report, error) {
	var rep Report
	layers := map[v1.Hash]v1.Layer{}
	var order []v1.Hash
	var visit func(a any) error
	visit = func(a any) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		rep.Manifests++
		switch v := a.(type) {
		case v1.ImageIndex:
			children, err := Children(v)
			if err != nil {
				return err
			}
			for _, child := range children {
				if err := visit(child); err != nil {
					return err
				}
			}
		case v1.Image:
			if _, err := v.RawConfigFile(); err != nil {
				return err
			}
			ls, err := v.Layers()
			if err != nil {
				return err
			}
			for _, l := range ls {
				h, err := l.Digest()
				if err != nil {
					return err
				}
				if _, seen := layers[h]; !seen {
					layers[h] = l
					order = append(order, h)
				}
			}
		default:
			return fmt.Errorf("%T is neither an image nor an index", a)
		}
		return nil
	}
	if err := visit(a); err != nil {
		return rep, err
	}
	if opts.SkipLayers {
		for _, h := range order {
			size, _ := layers[h].Size()
			rep.Skipped++
			rep.SkipBytes += size
		}
		return rep, nil
	}
	var mu sync.Mutex
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(max(opts.Jobs, 1))
	for _, h := range order {
		l := layers[h]
		g.Go(func() error {
			n, err := readLayer(ctx, l)
			mu.Lock()
			rep.Layers++
			rep.Bytes += n
			mu.Unlock()
			return err
		})
	}
	return rep, g.Wait()
}

// Manifest is an image or an index: what an index's children are.
type Manifest interface {
	Digest() (v1.Hash, error)
	MediaType() (types.MediaType, error)
	Size() (int64, error)
	RawManifest() ([]byte, error)
}

// Children returns the manifests idx lists, in its order, each as idx
// hands it out: a v1.ImageIndex from ImageIndex or a v1.Image from Image,
// as its descriptor's media type says. A child of any other media type is
// refused, since it can be read as neither. Walk and the store's writes
// go down an index by it.
func Children(idx v1.ImageIndex) ([]Manifest, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	children := make([]Manifest, 0, len(im.Manifests))
	for _, d := range im.Manifests {
		var child Manifest
		switch {
		case d.MediaType.IsIndex():
			child, err = idx.ImageIndex(d.Digest)
		case d.MediaType.IsImage():
			child, err = idx.Image(d.Digest)
		default:
			return nil, fmt.Errorf("index child %s is a %q, not a manifest", d.Digest, d.MediaType)
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", d.Digest, err)
		}
		children = append(children, child)
	}
	return children, nil
}

// chunk is how much a layer is read at a time: the memory Walk holds per
// job, whatever the layer's size.
const chunk = 256 << 10

var buffers = sync.Pool{New: func() any { return new([chunk]byte) }}

// readLayer reads l's compressed stream to its end and returns how many
// bytes it read.
func readLayer(ctx context.Context, l v1.Layer) (int64, error) {
	rc, err := l.Compressed()
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	buf := buffers.Get().(*[chunk]byte)
	defer buffers.Put(buf)
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, err := rc.Read(buf[:])
		total += int64(n)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			h, _ := l.Digest()
			var me *MismatchError
			if errors.As(err, &me) {
				return total, err
			}
			return total, fmt.Errorf("layer %s: %w", h, err)
		}
	}
}

// ReadLayer reads l's compressed bytes whole, at most limit of them: a
// layer that holds more is refused with ErrTooLarge rather than cut
// short, since only a read to the end checks the bytes.
func ReadLayer(l v1.Layer, limit int64) ([]byte, error) {
	h, err := l.Digest()
	if err != nil {
		return nil, err
	}
	if size, err := l.Size(); err == nil && size > limit {
		return nil, fmt.Errorf("layer %s: %d bytes: %w of %d bytes", h, size, ErrTooLarge, limit)
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("layer %s: %w of %d bytes", h, ErrTooLarge, limit)
	}
	return b, nil
}
