package publish

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Load hands images to a container engine's CLI (`podman load` or
// `docker load`) through a docker archive.
type Load struct {
	// Tool is "podman" or "docker"; "" picks podman when installed, else docker.
	Tool string
	// Env is the tool's environment (nil: inherit).
	Env     []string
	TempDir string
	// Engine says how images are staged: whether an index is loaded as one
	// platform's image and whether each image is also tagged by its digest.
	Engine
	staged localImages
}

var _ Publisher = (*Load)(nil)

// Engine is how ko hands images to a local engine (ko.local) or to kind
// (kind.local): one image per package, named REPO:HEX after its own
// digest besides the tags.
type Engine struct {
	// Platform, when set, makes an index loadable: its image for this os
	// and architecture is loaded instead, as ko does. nil: an index is
	// refused with ErrMultiPlatform.
	Platform *v1.Platform
	// DigestTags also tags each image REPO:HEX, its manifest digest's hex.
	DigestTags bool
}

// localImages stages what a local engine or kind gets, as a docker archive.
type localImages struct{ archive DockerArchive }

func (s *localImages) publish(ctx context.Context, e Engine, a Artifact, repo string, tags []string) (name.Digest, error) {
	ref, err := digestRef(repo, a)
	if err != nil {
		return name.Digest{}, err
	}
	if e.Platform != nil {
		if a, err = PlatformImage(a, *e.Platform); err != nil {
			return name.Digest{}, err
		}
	}
	if e.DigestTags {
		h, err := a.Digest()
		if err != nil {
			return name.Digest{}, err
		}
		tags = append([]string{h.Hex}, tags...)
	}
	if _, err := s.archive.Publish(ctx, a, repo, tags); err != nil {
		return name.Digest{}, err
	}
	return ref, nil
}

// handOver writes the staged archive into a new directory under tempDir,
// runs the tool that find names with args(file), and removes the
// directory. With nothing staged nothing runs.
func (s *localImages) handOver(ctx context.Context, env []string, tempDir, prefix string, find func() (string, error), args func(file string) []string) error {
	if len(s.archive.items) == 0 {
		return nil
	}
	tool, err := find()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp(tempDir, prefix)
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	s.archive.File = filepath.Join(dir, "images.tar")
	if err := s.archive.Close(ctx); err != nil {
		return err
	}
	return runTool(ctx, env, tool, args(s.archive.File)...)
}

// PlatformImage is a as one image: a itself when it is an image, else the
// index's first image whose os and architecture are p's (the variant is
// not looked at), as ko picks what it loads into a daemon or kind.
func PlatformImage(a Artifact, p v1.Platform) (v1.Image, error) {
	switch a := a.(type) {
	case v1.Image:
		return a, nil
	case v1.ImageIndex:
		m, err := a.IndexManifest()
		if err != nil {
			return nil, err
		}
		var have []string
		for _, d := range m.Manifests {
			if d.Platform == nil {
				continue
			}
			if d.Platform.OS == p.OS && d.Platform.Architecture == p.Architecture {
				return a.Image(d.Digest)
			}
			have = append(have, d.Platform.String())
		}
		return nil, fmt.Errorf("%w: the index has no %s/%s image to load (it has %s): add that platform", ErrNoPlatformImage, p.OS, p.Architecture, strings.Join(have, ", "))
	}
	return nil, fmt.Errorf("cannot load a %T", a)
}

// ErrNoPlatformImage means an index has no image for the platform a local
// engine or kind is loaded with.
var ErrNoPlatformImage = errors.New("no image for the platform to load")

func (l *Load) tool() (string, error) {
	if l.Tool != "" {
		return exec.LookPath(l.Tool)
	}
	for _, t := range []string{"podman", "docker"} {
		if p, err := exec.LookPath(t); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("--load needs podman or docker on PATH")
}

// Check implements Publisher.
func (l *Load) Check(context.Context) error {
	_, err := l.tool()
	return err
}

// Publish implements Publisher. It returns a's own digest, also when an
// index is loaded as one of its images.
func (l *Load) Publish(ctx context.Context, a Artifact, repo string, tags []string) (name.Digest, error) {
	return l.staged.publish(ctx, l.Engine, a, repo, tags)
}

// Close implements Publisher: it writes the archive and runs `TOOL load`.
func (l *Load) Close(ctx context.Context) error {
	return l.staged.handOver(ctx, l.Env, l.TempDir, "kiln-load-*", l.tool, func(file string) []string {
		return []string{"load", "-i", file}
	})
}

func runTool(ctx context.Context, env []string, tool string, args ...string) error {
	cmd := exec.CommandContext(ctx, tool, args...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %v: %s", filepath.Base(tool), args[0], err, strings.TrimSpace(out.String()))
	}
	return nil
}
