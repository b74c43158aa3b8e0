package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/kilnbuild/kiln/internal/checked"
	"github.com/kilnbuild/kiln/internal/keys"
	"github.com/kilnbuild/kiln/internal/provenance"
	"github.com/kilnbuild/kiln/internal/sbom"
	"github.com/kilnbuild/kiln/internal/verify"
)

type verifyFlags struct {
	key          string
	attestations bool
	builderID    string
	sourceRepo   string
	rebuild      bool
	source       string
	store        string
	full         bool
	skipLayers   bool
}

func newVerifyCommand(inv Invocation) *cobra.Command {
	f := &verifyFlags{}
	cmd := &cobra.Command{
		Use:   "verify --key cosign.pub IMAGE",
		Short: "Check an image's signature, and optionally its SBOM and provenance, or rebuild it",
		Long: `Check that IMAGE carries a signature by the key over its exact digest (and, for
an index, over every platform manifest). With --attestations, also check the
SPDX SBOM and the SLSA provenance: signed by the key, about this digest, made by
the expected builder, from the expected source repository. With --rebuild,
rebuild the image from the source and parameters its provenance records and
compare digests.

Every byte kiln reads is checked against its digest: first the manifest, the
config and every layer (for an index: the index, and every platform's manifest,
config and layer) are read and hashed, so the signed digest is the digest of the
bytes at hand. --skip-layers reads manifests and configs only, and says so.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVerify(cmd, inv, f, args[0])
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.key, "key", "", "cosign public key file")
	fl.BoolVar(&f.attestations, "attestations", false, "also verify the SBOM and provenance attestations")
	fl.StringVar(&f.builderID, "builder-id", provenance.BuilderID, "builder id the provenance must name")
	fl.StringVar(&f.sourceRepo, "source-repo", "", "source repository the provenance must name (e.g. https://github.com/org/repo)")
	fl.BoolVar(&f.rebuild, "rebuild", false, "rebuild from the recorded source and parameters and compare digests")
	fl.StringVar(&f.source, "source", "", "with --rebuild: the source checkout to use (default: a worktree of this repository at the recorded commit)")
	fl.StringVar(&f.store, "store", "", "local store directory (default as for kiln build)")
	fl.BoolVar(&f.full, "full", true, "read every layer and check it against its digest")
	fl.BoolVar(&f.skipLayers, "skip-layers", false, "check manifests and configs only, not the layers' bytes (the same as --full=false)")
	return cmd
}

func runVerify(cmd *cobra.Command, inv Invocation, f *verifyFlags, ref string) error {
	ctx := cmd.Context()
	if f.key == "" {
		return errors.New("--key is required: the cosign public key (cosign.pub)")
	}
	v, err := keys.LoadVerifier(abs(inv.Dir, f.key))
	if err != nil {
		return err
	}
	t, err := resolveImage(ctx, inv, ref, f.store)
	if err != nil {
		return err
	}
	if err := checkContent(ctx, inv, t, !f.full || f.skipLayers); err != nil {
		return err
	}
	platforms, err := t.platformDigests()
	if err != nil {
		return err
	}
	for _, d := range append([]v1.Hash{t.digest}, platforms...) {
		if err := verify.Signature(ctx, t.store, t.repo, d, v); err != nil {
			return err
		}
		fmt.Fprintf(inv.Stdout, "signature: %s@%s signed by %s\n", t.repo, d, f.key)
	}
	if !f.attestations && !f.rebuild {
		return nil
	}
	atts, err := verify.Attestations(ctx, t.store, t.repo, t.digest, v)
	if err != nil {
		return err
	}
	if f.attestations {
		doc, ok := atts[sbom.PredicateType]
		if !ok {
			return fmt.Errorf("%s@%s: no SBOM attestation (%s) signed by the key", t.repo, t.digest, sbom.PredicateType)
		}
		var spdx sbom.Document
		if err := json.Unmarshal(doc.Statement.Predicate, &spdx); err != nil || spdx.SPDXVersion == "" {
			return fmt.Errorf("%s@%s: the SBOM attestation is not an SPDX document", t.repo, t.digest)
		}
		fmt.Fprintf(inv.Stdout, "sbom: %s, %d packages, subject %s\n", spdx.SPDXVersion, len(spdx.Packages), t.digest)
	}
	prov, ok := atts[provenance.PredicateType]
	if !ok {
		return fmt.Errorf("%s@%s: no provenance attestation (%s) signed by the key", t.repo, t.digest, provenance.PredicateType)
	}
	var pred provenance.Predicate
	if err := json.Unmarshal(prov.Statement.Predicate, &pred); err != nil {
		return fmt.Errorf("%s@%s: the provenance attestation is not SLSA v1 provenance: %v", t.repo, t.digest, err)
	}
	if err := verify.Provenance(pred, f.builderID, f.sourceRepo); err != nil {
		return fmt.Errorf("%s@%s: %w", t.repo, t.digest, err)
	}
	line := fmt.Sprintf("provenance: builder %s, package %s", pred.RunDetails.Builder.ID, pred.BuildDefinition.ExternalParameters.Package)
	if src, ok := pred.Dependency(provenance.DepSource); ok {
		line += fmt.Sprintf(", source %s at %s", strings.TrimPrefix(src.URI, "git+"), src.Digest["gitCommit"])
	} else {
		line += ", no source commit recorded (built outside git)"
	}
	fmt.Fprintln(inv.Stdout, line)
	if !f.rebuild {
		return nil
	}
	res, err := verify.Rebuild(ctx, verify.RebuildOptions{
		Predicate: pred, Want: t.digest, Source: f.source, Dir: inv.Dir, Env: inv.Env, CacheDir: CacheDir(inv.getenv),
	})
	if err != nil {
		return err
	}
	if !res.Match {
		return fmt.Errorf("rebuild: %s rebuilt to %s, not %s: the image does not come from the recorded source and parameters", pred.BuildDefinition.ExternalParameters.Package, res.Got, t.digest)
	}
	fmt.Fprintf(inv.Stdout, "rebuild: %s from %s reproduces %s\n", pred.BuildDefinition.ExternalParameters.Package, res.Source, t.digest)
	return nil
}

// checkContent reads what t names, as internal/checked does, and says
// what it checked, or skipped.
func checkContent(ctx context.Context, inv Invocation, t imageTarget, skipLayers bool) error {
	rep, err := checked.Walk(ctx, t.artifact, checked.WalkOptions{SkipLayers: skipLayers, Jobs: runtime.GOMAXPROCS(0)})
	if err != nil {
		return err
	}
	if skipLayers {
		fmt.Fprintf(inv.Stdout, "content: %s@%s: %s checked; %s (%s) skipped (--skip-layers): their bytes were not checked against their digests\n",
			t.repo, t.digest, manifests(rep.Manifests), plural(rep.Skipped, "layer"), humanBytes(rep.SkipBytes))
		return nil
	}
	fmt.Fprintf(inv.Stdout, "content: %s@%s: %s and %s (%s) checked against their digests\n",
		t.repo, t.digest, manifests(rep.Manifests), plural(rep.Layers, "layer"), humanBytes(rep.Bytes))
	return nil
}

// manifests says "1 manifest and its config" or "N manifests and their configs".
func manifests(n int) string {
	if n == 1 {
		return "1 manifest and its config"
	}
	return fmt.Sprintf("%d manifests and their configs", n)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
