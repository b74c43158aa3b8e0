package compare

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kilnbuild/kiln/internal/checked"
)

// dockerManifest is one image of a `docker save` tarball's manifest.json.
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// digestName matches the names docker save and ggcr give a config or
// layer named by its digest: HEX.json, sha256:HEX, blobs/sha256/HEX.
var digestName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(?:.*/)?(?:sha256[:/])?([0-9a-f]{64})(?:\.json)?$`) })

// openDockerArchive reads a `docker save` tarball in place (see archive).
// manifest.json and the config are read within the JSON budget; the
// config is checked against its file name when that is its digest, and
// each layer's uncompressed bytes against the config's diff_ids as they
// are read. nm picks one of several images by REPO:TAG.
func openDockerArchive(file, nm string, opt Options, m *meter) (*Source, error) {
	var tag *name.Tag
	if nm != "" {
		t, err := name.NewTag(nm)
		if err != nil {
			return nil, fmt.Errorf("bad image name %q: %v", nm, err)
		}
		tag = &t
	}
	a, err := openArchive(file, opt.TempDir, m)
	if err != nil {
		if errors.Is(err, errNotTar) {
			return nil, fmt.Errorf("not a docker archive: %v", err)
		}
		return nil, err
	}
	img, err := dockerImage(a, tag)
	if err != nil {
		a.Close()
		return nil, err
	}
	return &Source{Kind: KindDockerArchive, Image: img, cleanup: a.Close}, nil
}

func dockerImage(a *archive, tag *name.Tag) (v1.Image, error) {
	if !a.has("manifest.json") {
		return nil, errors.New("not a docker archive (no manifest.json inside)")
	}
	raw, err := a.readJSON("manifest.json")
	if err != nil {
		return nil, err
	}
	var ms []dockerManifest
	if err := json.Unmarshal(raw, &ms); err != nil {
		return nil, fmt.Errorf("not a docker archive: manifest.json does not decode: %v", err)
	}
	dm, err := pickDocker(ms, tag)
	if err != nil {
		return nil, err
	}
	cfg, err := dockerConfig(a, dm.Config)
	if err != nil {
		return nil, err
	}
	cf, err := v1.ParseConfigFile(bytes.NewReader(cfg))
	if err != nil {
		return nil, fmt.Errorf("config %s does not decode: %v", dm.Config, err)
	}
	if len(cf.RootFS.DiffIDs) != len(dm.Layers) {
		return nil, fmt.Errorf("manifest.json lists %d layers, the config %d diff_ids", len(dm.Layers), len(cf.RootFS.DiffIDs))
	}
	layers := make([]*dockerLayer, len(dm.Layers))
	allGzip := true
	for i, ln := range dm.Layers {
		l := &dockerLayer{a: a, name: ln, diffID: cf.RootFS.DiffIDs[i]}
		if l.gzip, err = l.isGzip(); err != nil {
			return nil, err
		}
		allGzip = allGzip && l.gzip
		layers[i] = l
	}
	if !allGzip {
		// Some layers are plain tar streams: describe each by its gzip,
		// as docker's registry push and ggcr's tarball.Image do.
		return partial.UncompressedToImage(&dockerUncompressed{cfg: cfg, layers: layers})
	}
	mf := &v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.DockerManifestSchema2,
		Config:        v1.Descriptor{MediaType: types.DockerConfigJSON, Size: int64(len(cfg)), Digest: sha256Hash(cfg)},
	}
	for _, l := range layers {
		if err := l.hash(); err != nil {
			return nil, err
		}
		mf.Layers = append(mf.Layers, v1.Descriptor{MediaType: types.DockerLayer, Size: l.size, Digest: l.digest})
	}
	rawManifest, err := json.Marshal(mf)
	if err != nil {
		return nil, err
	}
	img, err := partial.CompressedToImage(&dockerCompressed{cfg: cfg, manifest: rawManifest, layers: layers})
	if err != nil {
		return nil, err
	}
	return &dockerLayers{Image: img, layers: layers}, nil
}

// dockerLayers gives a compressed docker image its own layers: partial's
// would gunzip without checking the diff_ids.
type dockerLayers struct {
	v1.Image
	layers []*dockerLayer
}

func (d *dockerLayers) Layers() ([]v1.Layer, error) {
	out := make([]v1.Layer, len(d.layers))
	for i, l := range d.layers {
		out[i] = l
	}
	return out, nil
}

func (d *dockerLayers) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	for _, l := range d.layers {
		if l.digest == h {
			return l, nil
		}
	}
	return d.Image.LayerByDigest(h)
}

func (d *dockerLayers) LayerByDiffID(h v1.Hash) (v1.Layer, error) {
	for _, l := range d.layers {
		if l.diffID == h {
			return l, nil
		}
	}
	return nil, fmt.Errorf("diff id %s is not in the docker archive's image", h)
}

// pickDocker chooses the manifest.json entry tag names, or the only one.
func pickDocker(ms []dockerManifest, tag *name.Tag) (dockerManifest, error) {
	if tag == nil {
		switch len(ms) {
		case 1:
			return ms[0], nil
		case 0:
			return dockerManifest{}, errors.New("not a docker archive: manifest.json lists no image")
		}
		return dockerManifest{}, errors.New("the docker archive holds several images: name one as docker-archive:FILE:REPO:TAG")
	}
	var have []string
	for _, m := range ms {
		for _, rt := range m.RepoTags {
			have = append(have, rt)
			if t, err := name.NewTag(rt); err == nil && t.String() == tag.String() {
				return m, nil
			}
		}
	}
	return dockerManifest{}, fmt.Errorf("no image tagged %s in the docker archive (it has %s)", tag, listNames(have))
}

// dockerConfig reads the config within the JSON budget, checked against
// its name when the name is its digest.
func dockerConfig(a *archive, file string) ([]byte, error) {
	rc, size, err := a.open(file)
	if err != nil {
		return nil, fmt.Errorf("config %s: %v", file, err)
	}
	if size > a.m.lim.JSON {
		rc.Close()
		return nil, jsonTooLarge("config "+file, size, a.m.lim.JSON)
	}
	if sm := digestName().FindStringSubmatch(file); sm != nil {
		return checked.ReadAll(rc, "config", v1.Hash{Algorithm: "sha256", Hex: sm[1]}, size, a.m.lim.JSON)
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func sha256Hash(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

// dockerLayer is one layer file of a docker archive, plain or gzipped.
type dockerLayer struct {
	a      *archive
	name   string
	diffID v1.Hash
	gzip   bool
	// digest and size of the gzipped file, set by hash.
	digest v1.Hash
	size   int64
}

func (l *dockerLayer) isGzip() (bool, error) {
	rc, _, err := l.a.open(l.name)
	if err != nil {
		return false, fmt.Errorf("layer %s: %v", l.name, err)
	}
	defer rc.Close()
	var magic [2]byte
	n, _ := io.ReadFull(rc, magic[:])
	return n == 2 && magic[0] == 0x1f && magic[1] == 0x8b, nil
}

// hash names a gzipped layer file by its digest (one read of the file).
func (l *dockerLayer) hash() error {
	rc, _, err := l.a.open(l.name)
	if err != nil {
		return fmt.Errorf("layer %s: %v", l.name, err)
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, &meteredReader{r: rc, m: l.a.m})
	if err != nil {
		return fmt.Errorf("layer %s: %w", l.name, err)
	}
	l.digest, l.size = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}, n
	return nil
}

var _ v1.Layer = (*dockerLayer)(nil)

func (l *dockerLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *dockerLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *dockerLayer) Size() (int64, error)                { return l.size, nil }
func (l *dockerLayer) MediaType() (types.MediaType, error) { return types.DockerLayer, nil }

// Compressed is the gzipped file, checked against the digest hash took.
func (l *dockerLayer) Compressed() (io.ReadCloser, error) {
	rc, _, err := l.a.open(l.name)
	if err != nil {
		return nil, err
	}
	return checked.Reader(rc, "layer", l.digest, l.size)
}

// Uncompressed is the tar stream, checked against the diff_id as it is
// read; it ends in io.EOF only if it hashes to the diff_id. It is never
// longer than the bytes budget, so a gzip bomb cannot run on.
func (l *dockerLayer) Uncompressed() (io.ReadCloser, error) {
	rc, _, err := l.a.open(l.name)
	if err != nil {
		return nil, err
	}
	var r io.Reader = rc
	if l.gzip {
		zr, err := gzip.NewReader(bufio.NewReader(rc))
		if err != nil {
			return nil, fmt.Errorf("layer %s: %v", l.name, err)
		}
		r = &gzipErrors{r: zr, name: l.name}
	}
	lim := &budgetReader{r: r, left: l.a.m.lim.Bytes, limit: l.a.m.lim.Bytes}
	return checked.Reader(io.NopCloser(lim), "layer "+path.Base(l.name)+" diff_id", l.diffID, -1)
}

// gzipErrors names a truncated gzip stream as such.
type gzipErrors struct {
	r    io.Reader
	name string
}

func (g *gzipErrors) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = fmt.Errorf("layer %s: the gzip stream is truncated", g.name)
	} else if err != nil && err != io.EOF && !strings.Contains(err.Error(), g.name) {
		err = fmt.Errorf("layer %s: %v", g.name, err)
	}
	return n, err
}

// budgetReader fails once more than the bytes budget has been read.
type budgetReader struct {
	r           io.Reader
	left, limit int64
}

func (b *budgetReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n, &LimitError{What: "bytes read", Flag: "--max-read", Limit: b.limit}
	}
	return n, err
}

// dockerCompressed is a docker archive whose layers are all gzipped.
type dockerCompressed struct {
	cfg, manifest []byte
	layers        []*dockerLayer
}

func (d *dockerCompressed) RawConfigFile() ([]byte, error) { return d.cfg, nil }
func (d *dockerCompressed) RawManifest() ([]byte, error)   { return d.manifest, nil }
func (d *dockerCompressed) MediaType() (types.MediaType, error) {
	return types.DockerManifestSchema2, nil
}
func (d *dockerCompressed) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	for _, l := range d.layers {
		if l.digest == h {
			return l, nil
		}
	}
	if h == sha256Hash(d.cfg) {
		return &configLayer{d.cfg}, nil
	}
	return nil, fmt.Errorf("blob %s is not in the docker archive's image", h)
}

// dockerUncompressed is a docker archive with plain tar layers.
type dockerUncompressed struct {
	cfg    []byte
	layers []*dockerLayer
}

func (d *dockerUncompressed) RawConfigFile() ([]byte, error) { return d.cfg, nil }
func (d *dockerUncompressed) MediaType() (types.MediaType, error) {
	return types.DockerManifestSchema2, nil
}
func (d *dockerUncompressed) LayerByDiffID(h v1.Hash) (partial.UncompressedLayer, error) {
	for _, l := range d.layers {
		if l.diffID == h {
			return l, nil
		}
	}
	return nil, fmt.Errorf("diff id %s is not in the docker archive's image", h)
}

// configLayer is the config as a blob.
type configLayer struct{ raw []byte }

func (c *configLayer) Digest() (v1.Hash, error) { return sha256Hash(c.raw), nil }
func (c *configLayer) Size() (int64, error)     { return int64(len(c.raw)), nil }
func (c *configLayer) MediaType() (types.MediaType, error) {
	return types.DockerConfigJSON, nil
}
func (c *configLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(c.raw)), nil
}
