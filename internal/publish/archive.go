package publish

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
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
	lay := &Layout{Dir: dir}
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
var ErrMultiPlatform = fmt.Errorf("docker archives hold one platform per image: build a single platform with --platform")

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

func writeDockerArchive(w io.Writer, items []pending) error {
	refs := map[name.Reference]v1.Image{}
	for _, it := range items {
		tags := it.tags
		if len(tags) == 0 {
			tags = []string{"latest"}
		}
		for _, t := range tags {
			tag, err := name.NewTag(it.repo + ":" + t)
			if err != nil {
				return fmt.Errorf("invalid image name %s:%s: %w", it.repo, t, err)
			}
			refs[tag] = it.a.(v1.Image)
		}
	}
	return tarball.MultiRefWrite(refs, w)
}

// writeAtomic writes file through a temporary sibling and renames it into
// place, so the file is either whole or absent.
func writeAtomic(file string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".tmp-*")
	if err != nil {
		return fmt.Errorf("output %s: %w: %v", file, ErrNotWritable, err)
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", file, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", file, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}
