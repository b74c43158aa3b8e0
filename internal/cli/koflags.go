package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/logs"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/pflag"

	"github.com/kilnbuild/kiln/internal/publish"
	"github.com/kilnbuild/kiln/internal/request"
)

// koLocalRepo is where ko's --local puts images when KO_DOCKER_REPO does
// not say: the local engine's ko.local/... names.
const koLocalRepo = "ko.local"

// koFlags are ko build's publishing and image flags that kiln build
// takes with ko's spelling and meaning (ko v0.19.1).
type koFlags struct {
	tagOnly       bool
	push          bool
	local         bool
	tarball       string
	ociLayoutPath string
	labels        []string
	annotations   []string
	user          string
	disableOpt    bool
	ldflags       []string
	insecure      bool
	verbose       bool
	sbom          string
	sbomDir       string
	debug         bool
}

func (k *koFlags) register(fl *pflag.FlagSet) {
	fl.BoolVar(&k.tagOnly, "tag-only", false, "print REPO:TAG, without the digest (one tag, not latest), as ko")
	fl.BoolVar(&k.push, "push", true, "publish to the destination (--output, $KO_DOCKER_REPO or the store); --push=false only computes digests, or writes --tarball/--oci-layout-path")
	fl.BoolVarP(&k.local, "local", "L", false, "load the images into the local podman (or docker) only, named ko.local/... unless $KO_DOCKER_REPO says otherwise, as ko")
	fl.StringVar(&k.tarball, "tarball", "", "also write the images to this docker-archive file (alongside or, with --push=false, instead of the push)")
	fl.StringVar(&k.ociLayoutPath, "oci-layout-path", "", "also write the images to this OCI image layout directory")
	fl.StringSliceVar(&k.labels, "image-label", nil, "labels KEY=VALUE[,KEY=VALUE] to add to the image config, over .ko.yaml's; repeatable")
	fl.StringSliceVar(&k.annotations, "image-annotation", nil, "annotations KEY=VALUE[,KEY=VALUE] to add to the manifest, over .ko.yaml's; repeatable")
	fl.StringVar(&k.user, "image-user", "", "the user the image runs as (NAME, UID or UID:GID), over .ko.yaml's")
	fl.BoolVar(&k.disableOpt, "disable-optimizations", false, "compile with -gcflags=all=-N -l, for a debugger")
	fl.StringSliceVar(&k.ldflags, "ldflags", nil, "ldflags for go build, replacing .ko.yaml's (may be repeated), as ko")
	fl.BoolVar(&k.insecure, "insecure-registry", false, "do not verify registries' TLS certificates, and use plain http where a registry speaks it (pushes, bases, signatures)")
	fl.BoolVarP(&k.verbose, "verbose", "v", false, "also log every registry call on stderr")
	fl.StringVar(&k.sbom, "sbom", "spdx", "the unsigned SBOM attached to every image pushed (cosign's sha256-<hex>.sbom tag), as ko: spdx, cyclonedx (1.5 JSON), go.version-m or none")
	fl.StringVar(&k.sbomDir, "sbom-dir", "", "also write every SBOM to this directory, as NAME-PLATFORM.spdx.json (.cyclonedx.json, .go.version-m; NAME-index.* for an index)")
	fl.BoolVar(&k.debug, "debug", false, "put Delve into the image and start the program under it, listening on port 40000 (linux/amd64 and linux/arm64); compiles with -gcflags=all=-N -l")
}

// koOnly are the flags above that a build service does not take: they
// choose local destinations or how this machine reaches registries. The
// image flags (labels, annotations, user, optimizations) go with the
// request.
var koOnly = []string{"tag-only", "push", "local", "tarball", "oci-layout-path", "insecure-registry", "image-refs", "sbom-dir"}

// apply puts the image flags into b; a KEY=VALUE without '=' is refused,
// as ko refuses it.
func (k *koFlags) apply(b *request.Build) error {
	var err error
	if b.Labels, err = keyValues("--image-label", k.labels); err != nil {
		return err
	}
	if b.Annotations, err = keyValues("--image-annotation", k.annotations); err != nil {
		return err
	}
	b.User, b.DisableOptimizations, b.Ldflags = k.user, k.disableOpt, k.ldflags
	b.SBOM, b.Debug = k.sbom, k.debug
	return nil
}

func keyValues(flag string, kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		key, v, ok := strings.Cut(kv, "=")
		if !ok || key == "" {
			return nil, fmt.Errorf("%s %q: give KEY=VALUE", flag, kv)
		}
		m[key] = v
	}
	return m, nil
}

// check refuses what ko refuses, and combinations kiln cannot honour,
// before anything is built.
func (k *koFlags) check(f *buildFlags) error {
	if k.tagOnly {
		if len(f.tags) != 1 {
			return errors.New("--tag-only takes exactly one tag: give one with -t TAG")
		}
		if f.tags[0] == "latest" {
			return errors.New("--tag-only cannot use the latest tag: give a release tag with -t TAG")
		}
		// ko v0.19.1 takes several platforms too: the tag names the index.
	}
	if k.local {
		for name, set := range map[string]bool{"--output": f.output != "", "--tarball": k.tarball != "", "--oci-layout-path": k.ociLayoutPath != "", "--load": f.load, "--push=false": !k.push} {
			if set {
				return fmt.Errorf("-L/--local loads into the local engine only, as ko's: drop %s", name)
			}
		}
	}
	return nil
}

// publishers are the destinations besides the push: --tarball and
// --oci-layout-path, relative to dir.
func (k *koFlags) publishers(dir string) publish.Multi {
	var pubs publish.Multi
	if k.ociLayoutPath != "" {
		pubs = append(pubs, &publish.ToLayout{Dir: abs(dir, k.ociLayoutPath)})
	}
	if k.tarball != "" {
		pubs = append(pubs, &publish.DockerArchive{File: abs(dir, k.tarball)})
	}
	return pubs
}

// ref is how ko prints a published image: REPO:TAG with --tag-only,
// REPO:HEX with --local, REPO:TAG@DIGEST when the only tag is not latest
// (or, with nothing published at all, the first tag), else REPO@DIGEST.
func (k *koFlags) ref(repo, digest string, tags []string, published bool) string {
	switch {
	case k.tagOnly:
		return repo + ":" + tags[0]
	case k.local:
		return repo + ":" + strings.TrimPrefix(digest, "sha256:")
	case !published && len(tags) > 0:
		return repo + ":" + tags[0] + "@" + digest
	case len(tags) == 1 && tags[0] != "latest":
		return repo + ":" + tags[0] + "@" + digest
	}
	return repo + "@" + digest
}

// withVerbose sends ggcr's debug and warning logs (every registry call) to
// stderr while run runs, as ko -v does; they are discarded again after.
func withVerbose(on bool, stderr io.Writer, run func() error) error {
	if !on {
		return run()
	}
	logs.Debug.SetOutput(stderr)
	logs.Warn.SetOutput(stderr)
	defer func() {
		logs.Debug.SetOutput(io.Discard)
		logs.Warn.SetOutput(io.Discard)
	}()
	return run()
}

// writeImageRefs writes what ko's --image-refs writes: per package, the
// ref printed, or for an index the index and then each manifest in it, by
// digest; one a line.
func writeImageRefs(file string, outcomes []request.Outcome) error {
	var b bytes.Buffer
	for _, o := range outcomes {
		idx, ok := o.Artifact.(v1.ImageIndex)
		if !ok {
			fmt.Fprintln(&b, o.Ref)
			continue
		}
		m, err := idx.IndexManifest()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s@%s\n", o.Repo, o.Digest)
		for _, d := range m.Manifests {
			fmt.Fprintf(&b, "%s@%s\n", o.Repo, d.Digest)
		}
	}
	if err := os.WriteFile(file, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("--image-refs: %w", err)
	}
	return nil
}

// discardPublisher publishes nothing: ko's --push=false with no other
// destination, where the build only computes digests.
type discardPublisher struct{}

var _ publish.Publisher = discardPublisher{}

func (discardPublisher) Check(context.Context) error { return nil }
func (discardPublisher) Nearby() bool                { return true } // nothing leaves the machine
func (discardPublisher) Close(context.Context) error { return nil }
func (discardPublisher) Publish(_ context.Context, a publish.Artifact, repo string, _ []string) (name.Digest, error) {
	h, err := a.Digest()
	if err != nil {
		return name.Digest{}, err
	}
	return name.NewDigest(repo + "@" + h.String())
}
