package publish

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Load hands images to a container engine's CLI (`podman load` or
// `docker load`) through a docker archive.
type Load struct {
	// Tool is "podman" or "docker"; "" picks podman when installed, else docker.
	Tool string
	// Env is the tool's environment (nil: inherit).
	Env     []string
	TempDir string
	archive DockerArchive
}

var _ Publisher = (*Load)(nil)

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

// Publish implements Publisher.
func (l *Load) Publish(ctx context.Context, a Artifact, repo string, tags []string) (name.Digest, error) {
	return l.archive.Publish(ctx, a, repo, tags)
}

// Close implements Publisher: it writes the archive and runs `TOOL load`.
func (l *Load) Close(ctx context.Context) error {
	if len(l.archive.items) == 0 {
		return nil
	}
	tool, err := l.tool()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp(l.TempDir, "kiln-load-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	l.archive.File = filepath.Join(dir, "images.tar")
	if err := l.archive.Close(ctx); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, tool, "load", "-i", l.archive.File)
	cmd.Env = l.Env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s load: %v: %s", filepath.Base(tool), err, strings.TrimSpace(out.String()))
	}
	return nil
}
