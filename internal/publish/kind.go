package publish

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// DefaultKindCluster is kind's cluster name when KIND_CLUSTER_NAME is unset.
const DefaultKindCluster = "kind"

// ErrNoKind means the kind CLI is not on PATH.
var ErrNoKind = errors.New("the kind CLI is not on PATH")

// Kind loads images into a kind cluster's nodes, as ko's kind.local does:
// a docker archive handed to `kind load image-archive FILE --name
// CLUSTER`. Each image is named REPO:HEX after its digest, and tagged.
type Kind struct {
	// Cluster is the kind cluster; "" means DefaultKindCluster.
	Cluster string
	// Env is kind's environment, and its PATH is where kind is looked
	// for (nil: the process's).
	Env     []string
	TempDir string
	// Engine picks one platform of an index; DigestTags is always on.
	Engine
	staged localImages
}

var _ Publisher = (*Kind)(nil)

func (k *Kind) cluster() string {
	if k.Cluster == "" {
		return DefaultKindCluster
	}
	return k.Cluster
}

// tool finds kind on Env's PATH (the process's when Env is nil).
func (k *Kind) tool() (string, error) {
	p, err := lookPath(k.Env, "kind")
	if err != nil {
		return "", fmt.Errorf("%w: install kind to load into cluster %q, or publish elsewhere", ErrNoKind, k.cluster())
	}
	return p, nil
}

// lookPath is exec.LookPath over env's PATH; the process's when env is nil.
func lookPath(env []string, file string) (string, error) {
	if env == nil {
		return exec.LookPath(file)
	}
	var path string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue // as exec.LookPath, no lookups relative to the working directory
		}
		p := filepath.Join(dir, file)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

// Check implements Publisher: kind must be on PATH before anything builds.
func (k *Kind) Check(context.Context) error {
	_, err := k.tool()
	return err
}

// Publish implements Publisher. It returns a's own digest, also when an
// index is loaded as one of its images.
func (k *Kind) Publish(ctx context.Context, a Artifact, repo string, tags []string) (name.Digest, error) {
	e := k.Engine
	e.DigestTags = true
	return k.staged.publish(ctx, e, a, repo, tags)
}

// Close implements Publisher: it writes the archive and runs kind load.
func (k *Kind) Close(ctx context.Context) error {
	return k.staged.handOver(ctx, k.Env, k.TempDir, "kiln-kind-*", k.tool, func(file string) []string {
		return []string{"load", "image-archive", file, "--name", k.cluster()}
	})
}
