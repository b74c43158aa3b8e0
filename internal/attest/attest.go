package attest

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"golang.org/x/sync/errgroup"

	"github.com/kilnbuild/kiln/internal/base"
	"github.com/kilnbuild/kiln/internal/pipeline"
	"github.com/kilnbuild/kiln/internal/provenance"
	"github.com/kilnbuild/kiln/internal/sbom"
	"github.com/kilnbuild/kiln/internal/sign"
)

// Options say how a build is attested.
type Options struct {
	Signer      *sign.Signer
	Store       sign.Store
	KilnVersion string
	GOROOT      string // for the static base's tzdata version
	Dir         string // kiln's working directory
	ConfigPath  string // .ko.yaml used, "" for none
	Jobs        int
	Created     time.Time
	KoDataTime  time.Time // kodata's mtime when set apart from Created (KO_DATA_DATE_EPOCH)
	Debug       bool      // the image holds Delve (--debug)
}

// Result signs res's image (and each platform's manifest for an index) and
// attaches to each an SPDX SBOM and a SLSA provenance, signed with the same key.
func Result(ctx context.Context, o Options, res pipeline.Result) error {
	top, err := v1.NewHash(res.Digest)
	if err != nil {
		return fmt.Errorf("%s@%s: %w", res.Repo, res.Digest, err)
	}
	// Check every image before signing any, so a bad result leaves nothing
	// half-attested.
	if len(res.Images) == 0 {
		return fmt.Errorf("%s@%s: the build result lists no image", res.Repo, res.Digest)
	}
	children := make([]v1.Hash, len(res.Images))
	for i, img := range res.Images {
		if img.BuildInfo == nil {
			return fmt.Errorf("%s@%s (%s): the binary carries no Go build info: cannot write its SBOM", res.Repo, img.Digest, img.Platform)
		}
		if children[i], err = v1.NewHash(img.Digest); err != nil {
			return fmt.Errorf("%s@%s (%s): %w", res.Repo, img.Digest, img.Platform, err)
		}
	}
	pred := o.provenance(res)
	// Each manifest's signature and attestations live under their own tags
	// (or referrers), so the manifests are attested concurrently.
	g, gctx := errgroup.WithContext(ctx)
	if len(res.Images) > 1 {
		for i, img := range res.Images {
			g.Go(func() error { return o.attach(gctx, res, img, children[i], pred) })
		}
	}
	g.Go(func() error { return o.attach(gctx, res, res.Images[0], top, pred) })
	return g.Wait()
}

// attach signs d and attests it with img's SBOM and the build's provenance.
func (o Options) attach(ctx context.Context, res pipeline.Result, img pipeline.PlatformResult, d v1.Hash, pred provenance.Predicate) error {
	// The signature (.sig) and the attestations (.att, one after the other
	// since they share the tag) go up side by side.
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return o.Signer.Sign(ctx, o.Store, res.Repo, d) })
	g.Go(func() error { return o.attest(ctx, res, img, d, pred) })
	return g.Wait()
}

func (o Options) attest(ctx context.Context, res pipeline.Result, img pipeline.PlatformResult, d v1.Hash, pred provenance.Predicate) error {
	in := SBOMInput(res, img, d, o.Created, o.KilnVersion, o.GOROOT)
	if err := o.Signer.Attest(ctx, o.Store, res.Repo, d, sbom.PredicateType, sbom.Generate(in)); err != nil {
		return err
	}
	return o.Signer.Attest(ctx, o.Store, res.Repo, d, provenance.PredicateType, pred)
}

// SBOMInput is what the SBOM of res's image img, published as d, says:
// signed here, or attached unsigned (kiln build --sbom). goroot, when
// set, overrides the build's for the static base's contents.
func SBOMInput(res pipeline.Result, img pipeline.PlatformResult, d v1.Hash, created time.Time, kilnVersion, goroot string) sbom.Input {
	in := sbom.Input{
		Image: res.Repo + "@" + d.String(), Platform: img.Platform, BuildInfo: img.BuildInfo,
		Base: res.Base, BaseDigest: res.BaseDigest, Created: created, Tool: "kiln-" + kilnVersion,
	}
	if res.Base == base.StaticName {
		if goroot == "" {
			goroot = res.Record.GOROOT
		}
		in.BaseContents = base.StaticContents(goroot)
	}
	return in
}

func (o Options) provenance(res pipeline.Result) provenance.Predicate {
	rec := res.Record
	git := res.SourceGit()
	params := provenance.ExternalParameters{
		Package: res.ImportPath, Platforms: rec.Platforms, Flags: rec.Flags, Ldflags: rec.Ldflags,
		Env: rec.EnvNames, GOFLAGS: rec.GOFLAGS, Base: rec.BaseRef, SourceDateEpoch: o.Created.Unix(),
		Compression: string(rec.Compression.Algorithm), CompressionLevel: rec.Compression.EffectiveLevel(),
		Debug: o.Debug,
	}
	if !o.KoDataTime.IsZero() {
		t := o.KoDataTime.Unix()
		params.KoDataDateEpoch = &t
	}
	if root := git.Root; root != "" {
		params.Workdir = rel(root, o.Dir)
		if o.ConfigPath != "" {
			params.Config = rel(root, o.ConfigPath)
		}
	}
	goVersion := ""
	if bi := res.Images[0].BuildInfo; bi != nil {
		goVersion = bi.GoVersion
	}
	return provenance.New(provenance.Input{
		Params: params, Jobs: o.Jobs, SourceURL: git.RemoteURL, Commit: git.Commit, Dirty: git.Dirty,
		GoVersion: goVersion, BaseDigest: res.BaseDigest, KilnVersion: o.KilnVersion,
		Started: rec.Started, Finished: rec.Ended,
	})
}

func rel(root, p string) string {
	r, err := filepath.Rel(root, p)
	if err != nil {
		return p
	}
	return filepath.ToSlash(r)
}

// ErrNoDestination means the output cannot hold signatures.
var ErrNoDestination = fmt.Errorf("signing needs a registry, the local store or an oci: layout as the output")
