package publish

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/kilnbuild/kiln/internal/store"
)

// Artifact is a built image or image index.
type Artifact = store.Artifact

// Publisher sends artifacts to one destination.
type Publisher interface {
	// Check fails early, before anything is built, when the destination
	// cannot be written.
	Check(ctx context.Context) error
	// Publish writes a under repo (a repository name such as
	// "registry.example/team/app") with tags, and returns its digest reference.
	Publish(ctx context.Context, a Artifact, repo string, tags []string) (name.Digest, error)
	// Close finishes the destination; archive files appear only here, whole.
	Close(ctx context.Context) error
}

// ErrNotWritable means a destination refused writes.
var ErrNotWritable = errors.New("destination is not writable")

// Destination is a parsed --output value.
type Destination struct {
	Kind string // "registry", "oci", "oci-archive", "docker-archive", "store"
	// Path is the directory or file for oci, oci-archive, docker-archive and store.
	Path string
	// Repo is the registry repository for "registry".
	Repo string
}

// ParseDestination reads an --output value: oci:DIR, oci-archive:FILE,
// docker-archive:FILE, or a registry repository.
func ParseDestination(s string) (Destination, error) {
	for _, kind := range []string{"oci-archive", "docker-archive", "oci"} {
		if rest, ok := strings.CutPrefix(s, kind+":"); ok {
			if rest == "" {
				return Destination{}, fmt.Errorf("output %q names no path: use %s:PATH", s, kind)
			}
			return Destination{Kind: kind, Path: rest}, nil
		}
	}
	repo, err := name.NewRepository(s)
	if err != nil {
		return Destination{}, fmt.Errorf("output %q is not a registry repository, oci:DIR, oci-archive:FILE or docker-archive:FILE: %w", s, err)
	}
	return Destination{Kind: "registry", Repo: repo.String()}, nil
}

// refName is the ref-name annotation for repo:tag in a layout.
func refName(repo, tag string) string { return repo + ":" + tag }

func digestRef(repo string, a Artifact) (name.Digest, error) {
	h, err := a.Digest()
	if err != nil {
		return name.Digest{}, err
	}
	return name.NewDigest(repo + "@" + h.String())
}

// checkDirWritable makes dir (and parents) and proves a file can be created in it.
func checkDirWritable(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("%w: %v", ErrNotWritable, err)
	}
	f, err := os.CreateTemp(dir, ".kiln-check-*")
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotWritable, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// checkFileWritable checks that file's directory exists and accepts a new file.
func checkFileWritable(file string) error {
	dir := filepath.Dir(file)
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotWritable, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%w: %s is not a directory", ErrNotWritable, dir)
	}
	if st, err := os.Stat(file); err == nil && st.IsDir() {
		return fmt.Errorf("%w: %s is a directory", ErrNotWritable, file)
	}
	return checkDirWritable(dir)
}

// Multi publishes to several destinations; the first one's digest is returned.
type Multi []Publisher

var _ Publisher = Multi(nil)

// Check implements Publisher.
func (m Multi) Check(ctx context.Context) error {
	for _, p := range m {
		if err := p.Check(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Publish implements Publisher.
func (m Multi) Publish(ctx context.Context, a Artifact, repo string, tags []string) (name.Digest, error) {
	var first name.Digest
	for i, p := range m {
		d, err := p.Publish(ctx, a, repo, tags)
		if err != nil {
			return name.Digest{}, err
		}
		if i == 0 {
			first = d
		}
	}
	return first, nil
}

// Close implements Publisher.
func (m Multi) Close(ctx context.Context) error {
	var errs []error
	for _, p := range m {
		errs = append(errs, p.Close(ctx))
	}
	return errors.Join(errs...)
}
