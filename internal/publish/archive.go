package publish

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/renameio/v2"
)

type pending struct {
	a    Artifact
	repo string
	tags []string
}

// OCIArchive writes one tar file holding an OCI image layout with every
// published image. The file appears whole at Close, or not at all.
type OCIArchive struct {
	File string
	// TempDir holds the staging layout; "" means the file's directory.
	TempDir string
	items   []pending
}

var _ Publisher = (*OCIArchive)(nil)

// Check implements Publisher.
func (o *OCIArchive) Check(context.Context) error {
	if err := checkFileWritable(o.File); err != nil {
		return fmt.Errorf("output %s: %w", o.File, err)
	}
	return nil
}

// Publish implements Publisher.
func (o *OCIArchive) Publish(_ context.Context, a Artifact, repo string, tags []string) (name.Digest, error) {
	o.items = append(o.items, pending{a, repo, tags})
	return digestRef(repo, a)
}

// Close implements Publisher.
func (o *OCIArchive) Close(ctx context.Context) error {
	if len(o.items) == 0 {
		return nil
	}
	tmpBase := o.TempDir
	if tmpBase == "" {
		tmpBase = filepath.Dir(o.File)
	}
	dir, err := os.MkdirTemp(tmpBase, ".kiln-layout-*")
	if err != nil {
		return fmt.Errorf("output %s: %w", o.File, err)
	}
	defer os.RemoveAll(dir)
	lay := &ToLayout{Dir: dir}
	for _, it := range o.items {
		if _, err := lay.Publish(ctx, it.a, it.repo, it.tags); err != nil {
			return err
		}
	}
	return writeAtomic(o.File, func(w io.Writer) error { return tarDir(w, dir) })
}

// tarDir writes dir's regular files and directories, sorted, with fixed
// metadata, so the same layout gives the same archive bytes.
func tarDir(w io.Writer, dir string) error {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir && filepath.Base(p) != ".lock" {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(paths)
	tw := tar.NewWriter(w)
	for _, p := range paths {
		rel, _ := filepath.Rel(dir, p)
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, Typeflag: tar.TypeReg, Size: st.Size()}
		if st.IsDir() {
			hdr = &tar.Header{Name: filepath.ToSlash(rel) + "/", Mode: 0o755, Typeflag: tar.TypeDir}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if st.IsDir() {
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		_, err = io.Copy(tw, f)
		f.Close()
		if err != nil {
			return err
		}
	}
	return tw.Close()
}

// DockerArchive writes a `docker save`-style tarball that `docker load` and
// `podman load` read. It holds single-platform images only.
type DockerArchive struct {
	File  string
	items []pending
}

var _ Publisher = (*DockerArchive)(nil)

// Check implements Publisher.
func (d *DockerArchive) Check(context.Context) error {
	if err := checkFileWritable(d.File); err != nil {
		return fmt.Errorf("output %s: %w", d.File, err)
	}
	return nil
}

// ErrMultiPlatform means a destination holds one platform per image.
var ErrMultiPlatform = errors.New("docker archives hold one platform per image: build a single platform with --platform")

// Publish implements Publisher.
func (d *DockerArchive) Publish(_ context.Context, a Artifact, repo string, tags []string) (name.Digest, error) {
	if _, ok := a.(v1.Image); !ok {
		return name.Digest{}, ErrMultiPlatform
	}
	d.items = append(d.items, pending{a, repo, tags})
	return digestRef(repo, a)
}

// Close implements Publisher.
func (d *DockerArchive) Close(context.Context) error {
	if len(d.items) == 0 {
		return nil
	}
	return writeAtomic(d.File, func(w io.Writer) error { return writeDockerArchive(w, d.items) })
}

// writeDockerArchive writes items as a `docker save` tarball: each image's
// config and layers (each layer once), then manifest.json. Images, tags and
// files come in publication order so the same items give the same bytes
// (tarball.MultiRefWrite takes a map and orders them at random). A tag given
// twice names the image published last, as `docker load` would leave it; an
// image left with no tag is not written.
func writeDockerArchive(w io.Writer, items []pending) error {
	type entry struct {
		img  v1.Image
		tags []string
	}
	var images []*entry
	byDigest := map[v1.Hash]*entry{}
	owner := map[string]*entry{}
	for _, it := range items {
		img := it.a.(v1.Image)
		h, err := img.Digest()
		if err != nil {
			return err
		}
		e := byDigest[h]
		if e == nil {
			e = &entry{img: img}
			byDigest[h] = e
			images = append(images, e)
		}
		tags := it.tags
		if len(tags) == 0 {
			tags = []string{"latest"}
		}
		for _, t := range tags {
			tag, err := name.NewTag(it.repo + ":" + t)
			if err != nil {
				return fmt.Errorf("invalid image name %s:%s: %w", it.repo, t, err)
			}
			owner[tag.String()] = e
			e.tags = append(e.tags, tag.String())
		}
	}

	tw := tar.NewWriter(w)
	var manifest tarball.Manifest
	written := map[string]bool{}
	for _, e := range images {
		var tags []string
		for _, t := range e.tags {
			if owner[t] == e && !slices.Contains(tags, t) {
				tags = append(tags, t)
			}
		}
		if len(tags) == 0 {
			continue // every name moved to a later image
		}
		cfgName, err := e.img.ConfigName()
		if err != nil {
			return err
		}
		cfg, err := e.img.RawConfigFile()
		if err != nil {
			return err
		}
		if !written[cfgName.String()] {
			written[cfgName.String()] = true
			if err := writeTarFile(tw, cfgName.String(), int64(len(cfg)), bytes.NewReader(cfg)); err != nil {
				return err
			}
		}
		desc := tarball.Descriptor{Config: cfgName.String(), RepoTags: tags}
		layers, err := e.img.Layers()
		if err != nil {
			return err
		}
		for _, l := range layers {
			file, err := writeDockerLayer(tw, l, written)
			if err != nil {
				return err
			}
			desc.Layers = append(desc.Layers, file)
			if err := addLayerSource(&desc, e.img, l); err != nil {
				return err
			}
		}
		manifest = append(manifest, desc)
	}
	raw, err := json.Marshal(manifest)
	if err != nil {
		return err
	}
	if err := writeTarFile(tw, "manifest.json", int64(len(raw)), bytes.NewReader(raw)); err != nil {
		return err
	}
	return tw.Close()
}

// writeDockerLayer writes l as <hex>.tar.gz (.tar.zst, .tar) unless written
// already, and returns the file name.
func writeDockerLayer(tw *tar.Writer, l v1.Layer, written map[string]bool) (string, error) {
	d, err := l.Digest()
	if err != nil {
		return "", err
	}
	mt, err := l.MediaType()
	if err != nil {
		return "", err
	}
	file := d.Hex + ".tar.gz"
	switch mt {
	case types.OCILayerZStd:
		file = d.Hex + ".tar.zst"
	case types.OCIUncompressedLayer, types.OCIUncompressedRestrictedLayer, types.DockerUncompressedLayer:
		file = d.Hex + ".tar"
	}
	if written[file] {
		return file, nil
	}
	written[file] = true
	size, err := l.Size()
	if err != nil {
		return "", err
	}
	rc, err := l.Compressed()
	if err != nil {
		return "", err
	}
	defer rc.Close()
	return file, writeTarFile(tw, file, size, rc)
}

// addLayerSource records a foreign (non-distributable) layer's descriptor,
// keyed by diffID, as `docker save` does.
func addLayerSource(desc *tarball.Descriptor, img v1.Image, l v1.Layer) error {
	d, err := l.Digest()
	if err != nil {
		return err
	}
	bd, err := partial.BlobDescriptor(img, d)
	if err != nil {
		return err
	}
	if bd.MediaType.IsDistributable() {
		return nil
	}
	diffID, err := l.DiffID()
	if err != nil {
		return err
	}
	if desc.LayerSources == nil {
		desc.LayerSources = map[v1.Hash]v1.Descriptor{}
	}
	desc.LayerSources[diffID] = *bd
	return nil
}

func writeTarFile(tw *tar.Writer, file string, size int64, r io.Reader) error {
	if err := tw.WriteHeader(&tar.Header{Name: file, Mode: 0o644, Typeflag: tar.TypeReg, Size: size}); err != nil {
		return err
	}
	n, err := io.Copy(tw, r)
	if err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	if n != size {
		return fmt.Errorf("writing %s: %d bytes, want %d", file, n, size)
	}
	return nil
}

// writeAtomic writes file through a temporary sibling, synced, and renames
// it into place, so the file is either whole or absent; it is 0644.
func writeAtomic(file string, write func(io.Writer) error) error {
	tmp, err := renameio.NewPendingFile(file, renameio.WithTempDir(filepath.Dir(file)), renameio.WithStaticPermissions(0o644))
	if err != nil {
		return fmt.Errorf("output %s: %w: %v", file, ErrNotWritable, err)
	}
	defer tmp.Cleanup()
	if err := write(tmp); err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	if err := tmp.CloseAtomicallyReplace(); err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	return nil
}
