package publish

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"

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
	// Env is kind's environment (nil: inherit).
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

// Check implements Publisher: kind must be on PATH before anything builds.
func (k *Kind) Check(context.Context) error {
	if _, err := exec.LookPath("kind"); err != nil {
		return fmt.Errorf("%w: install kind to load into cluster %q, or publish elsewhere", ErrNoKind, k.cluster())
	}
	return nil
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
	if len(k.staged.archive.items) == 0 {
		return nil
	}
	if err := k.Check(ctx); err != nil {
		return err
	}
	dir, file, err := k.staged.write(ctx, k.TempDir, "kiln-kind-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	return runTool(ctx, k.Env, "kind", "load", "image-archive", file, "--name", k.cluster())
}
