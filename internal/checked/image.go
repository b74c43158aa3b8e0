package checked

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Blobs is content named by digest: an OCI image layout (layout.Path has
// this method), an unpacked archive, the store, a registry repository.
// Blob need not check what it returns: this package does.
type Blobs interface {
	Blob(h v1.Hash) (io.ReadCloser, error)
}

// Image reads the image manifest named desc from b. Its manifest and config
// are read whole (each at most MaxJSON bytes) and checked now; each layer
// is checked as it is read, through Reader, so a caller that reads a layer
// to its end has read the bytes the manifest names or gets a
// *MismatchError. desc.Size, when set, must match too.
func Image(b Blobs, desc v1.Descriptor) (v1.Image, error) {
	raw, m, err := readManifest(b, desc)
	if err != nil {
		return nil, err
	}
	mt := m.MediaType
	if mt == "" {
		mt = desc.MediaType
	}
	if mt != "" && !mt.IsImage() {
		return nil, fmt.Errorf("manifest %s is a %s, not an image manifest", desc.Digest, mt)
	}
	if m.Config.MediaType.IsIndex() || m.Config.MediaType.IsImage() {
		return nil, fmt.Errorf("manifest %s: its config is a %s, not a config", desc.Digest, m.Config.MediaType)
	}
	rc, err := b.Blob(m.Config.Digest)
	if err != nil {
		return nil, fmt.Errorf("config %s of manifest %s: %w", m.Config.Digest, desc.Digest, err)
	}
	cfg, err := ReadAll(rc, "config", m.Config.Digest, m.Config.Size, MaxJSON)
	if err != nil {
		return nil, err
	}
	cf, err := v1.ParseConfigFile(bytes.NewReader(cfg))
	if err != nil {
		return nil, fmt.Errorf("config %s of manifest %s: %w", m.Config.Digest, desc.Digest, err)
	}
	return &image{blobs: b, digest: desc.Digest, raw: raw, m: m, cfg: cfg, cf: cf, mediaType: mt}, nil
}

// readManifest reads and checks an image manifest blob.
func readManifest(b Blobs, desc v1.Descriptor) ([]byte, *v1.Manifest, error) {
	raw, err := readDocument(b, "manifest", desc)
	if err != nil {
		return nil, nil, err
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, nil, fmt.Errorf("manifest %s is not a manifest: %w", desc.Digest, err)
	}
	return raw, m, nil
}

// readDocument reads the manifest or index desc names (what says which),
// whole, at most MaxJSON bytes, and checks it. A zero desc.Size means the
// size is not declared (a digest alone).
func readDocument(b Blobs, what string, desc v1.Descriptor) ([]byte, error) {
	if desc.Digest.Hex == "" {
		return nil, fmt.Errorf("no digest names the %s", what)
	}
	size := desc.Size
	if size == 0 {
		size = -1
	}
	rc, err := openManifest(b, desc.Digest)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, desc.Digest, err)
	}
	return ReadAll(rc, what, desc.Digest, size, MaxJSON)
}

// openManifest opens the manifest or index h, through Manifests when b
// keeps its manifests apart.
func openManifest(b Blobs, h v1.Hash) (io.ReadCloser, error) {
	if m, ok := b.(Manifests); ok {
		return m.Manifest(h)
	}
	return b.Blob(h)
}

// image is a checked image: its manifest and config were checked when it
// was made, its layers are checked as they are read.
type image struct {
	blobs     Blobs
	digest    v1.Hash
	raw       []byte
	m         *v1.Manifest
	cfg       []byte
	cf        *v1.ConfigFile
	mediaType types.MediaType
}

var _ v1.Image = (*image)(nil)

func (i *image) Digest() (v1.Hash, error)            { return i.digest, nil }
func (i *image) MediaType() (types.MediaType, error) { return i.mediaType, nil }
func (i *image) Size() (int64, error)                { return int64(len(i.raw)), nil }
func (i *image) RawManifest() ([]byte, error)        { return i.raw, nil }
func (i *image) RawConfigFile() ([]byte, error)      { return i.cfg, nil }
func (i *image) ConfigName() (v1.Hash, error)        { return i.m.Config.Digest, nil }

// Manifest and ConfigFile return copies the caller may edit.
func (i *image) Manifest() (*v1.Manifest, error) { return v1.ParseManifest(bytes.NewReader(i.raw)) }
func (i *image) ConfigFile() (*v1.ConfigFile, error) {
	return v1.ParseConfigFile(bytes.NewReader(i.cfg))
}

func (i *image) Layers() ([]v1.Layer, error) {
	out := make([]v1.Layer, len(i.m.Layers))
	for n := range i.m.Layers {
		out[n] = i.layer(n)
	}
	return out, nil
}

func (i *image) layer(n int) *layer {
	l := &layer{blobs: i.blobs, desc: i.m.Layers[n]}
	if n < len(i.cf.RootFS.DiffIDs) {
		l.diffID = i.cf.RootFS.DiffIDs[n]
	}
	return l
}

// LayerByDigest returns a layer the manifest names, or its config.
func (i *image) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	if h == i.m.Config.Digest {
		return partial.CompressedToLayer(&configBlob{desc: i.m.Config, raw: i.cfg})
	}
	for n, d := range i.m.Layers {
		if d.Digest == h {
			return i.layer(n), nil
		}
	}
	return nil, fmt.Errorf("blob %s is not in manifest %s", h, i.digest)
}

func (i *image) LayerByDiffID(h v1.Hash) (v1.Layer, error) {
	for n, d := range i.cf.RootFS.DiffIDs {
		if d == h && n < len(i.m.Layers) {
			return i.layer(n), nil
		}
	}
	return nil, fmt.Errorf("diff id %s is not in image %s", h, i.digest)
}

// layer is one of a checked image's layers. Compressed is read through
// Reader. Uncompressed decompresses that, and it ends in io.EOF only once
// the compressed stream has been read to its end and checked; an error of
// the decompressor on changed bytes is reported as the *MismatchError.
type layer struct {
	blobs  Blobs
	desc   v1.Descriptor
	diffID v1.Hash
}

var _ v1.Layer = (*layer)(nil)

func (l *layer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *layer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *layer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *layer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }

func (l *layer) Compressed() (io.ReadCloser, error) {
	rc, err := l.blobs.Blob(l.desc.Digest)
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", l.desc.Digest, err)
	}
	return Reader(rc, "layer", l.desc.Digest, l.desc.Size)
}

func (l *layer) Uncompressed() (io.ReadCloser, error) {
	cr, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	ul, err := partial.CompressedToLayer(&opened{layer: l, rc: cr})
	if err != nil {
		cr.Close()
		return nil, err
	}
	ur, err := ul.Uncompressed()
	if err != nil {
		cr.Close()
		return nil, l.blame(cr, err)
	}
	return &uncompressed{ReadCloser: ur, l: l, compressed: cr}, nil
}

// blame returns the compressed stream's verdict when it finds the bytes
// changed, else err.
func (l *layer) blame(compressed io.Reader, err error) error {
	var me *MismatchError
	if errors.As(err, &me) {
		return err
	}
	if derr := Drain(compressed); errors.As(derr, &me) {
		return me
	}
	return fmt.Errorf("layer %s: %w", l.desc.Digest, err)
}

// opened is a layer whose compressed stream is already open.
type opened struct {
	*layer
	rc io.ReadCloser
}

func (o *opened) Compressed() (io.ReadCloser, error) { return o.rc, nil }

type uncompressed struct {
	io.ReadCloser
	l          *layer
	compressed io.ReadCloser
}

func (u *uncompressed) Read(p []byte) (int, error) {
	n, err := u.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		// The decompressor may stop before the compressed stream's end.
		if derr := Drain(u.compressed); derr != nil {
			return n, derr
		}
	case err != nil:
		err = u.l.blame(u.compressed, err)
	}
	return n, err
}

func (u *uncompressed) Close() error {
	err := u.ReadCloser.Close()
	u.compressed.Close()
	return err
}

// configBlob is the config, already read and checked, as a blob.
type configBlob struct {
	desc v1.Descriptor
	raw  []byte
}

func (c *configBlob) Digest() (v1.Hash, error)            { return c.desc.Digest, nil }
func (c *configBlob) Size() (int64, error)                { return int64(len(c.raw)), nil }
func (c *configBlob) MediaType() (types.MediaType, error) { return c.desc.MediaType, nil }
func (c *configBlob) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(c.raw)), nil
}
