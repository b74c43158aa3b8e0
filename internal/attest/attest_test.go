package attest_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/kilnbuild/kiln/internal/attest"
	"github.com/kilnbuild/kiln/internal/base"
	"github.com/kilnbuild/kiln/internal/layer"
	"github.com/kilnbuild/kiln/internal/pipeline"
	"github.com/kilnbuild/kiln/internal/provenance"
	"github.com/kilnbuild/kiln/internal/sbom"
	"github.com/kilnbuild/kiln/internal/sign"
	"github.com/kilnbuild/kiln/internal/testutil"
	"github.com/kilnbuild/kiln/internal/vcs"
	"github.com/kilnbuild/kiln/internal/verify"
)

const (
	commit     = "0123456789abcdef0123456789abcdef01234567"
	importPath = "example.com/hello/cmd/hello"
	baseRef    = "cgr.dev/chainguard/static:latest"
	baseDigest = "sha256:3333333333333333333333333333333333333333333333333333333333333333"
)

var created = time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)

type env struct {
	ctx  context.Context
	st   sign.Store
	repo string
	sv   signature.SignerVerifier
	opts attest.Options
	root string
}

func setup(t *testing.T, st sign.Store, repo string) *env {
	t.Helper()
	_, sv := testutil.ECDSAKey(t)
	root := t.TempDir()
	return &env{
		ctx: context.Background(), st: st, repo: repo, sv: sv, root: root,
		opts: attest.Options{
			Signer: sign.New(sv), Store: st, KilnVersion: "v9.8.7", GOROOT: runtime.GOROOT(),
			Dir: filepath.Join(root, "sub"), ConfigPath: filepath.Join(root, "sub", ".ko.yaml"),
			Jobs: 3, Created: created,
		},
	}
}

func registryEnv(t *testing.T) *env {
	t.Helper()
	return setup(t, &sign.RegistryStore{Keychain: authn.NewMultiKeychain()}, testutil.Registry(t)+"/example.com/hello")
}

func testBuildInfo(t *testing.T) *debug.BuildInfo {
	t.Helper()
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		t.Fatal("the test binary has no build info")
	}
	return bi
}

func (e *env) result(t *testing.T, digest string, images []pipeline.PlatformResult) pipeline.Result {
	var plats []string
	for _, img := range images {
		plats = append(plats, img.Platform)
	}
	return pipeline.Result{
		ImportPath: importPath, Ref: e.repo + "@" + digest, Digest: digest,
		Base: base.StaticName, BaseDigest: baseDigest, Images: images, Repo: e.repo,
		Record: pipeline.Record{
			Platforms: plats, Flags: []string{"-trimpath"}, Ldflags: []string{"-s", "-w"},
			EnvNames: []string{"CGO_ENABLED"}, GOFLAGS: "-mod=readonly", BaseRef: base.StaticName,
			Compression: layer.Compression{Algorithm: layer.Gzip},
			Git:         vcs.Git{Commit: commit, Dirty: true, RemoteURL: "https://github.com/example/hello", Root: e.root},
			Started:     created, Ended: created.Add(time.Minute),
		},
	}
}

// pushImage stores a random image and returns a single-image Result for it.
func (e *env) pushImage(t *testing.T) (pipeline.Result, v1.Hash) {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.Put(e.ctx, e.repo, "latest", img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return e.result(t, d.String(), []pipeline.PlatformResult{{Platform: "linux/amd64", Digest: d.String(), BuildInfo: testBuildInfo(t)}}), d
}

// checkAttested verifies d's signature and both attestations and returns
// the decoded predicates.
func (e *env) checkAttested(t *testing.T, d v1.Hash) (sbom.Document, provenance.Predicate) {
	t.Helper()
	if err := verify.Signature(e.ctx, e.st, e.repo, d, e.sv); err != nil {
		t.Errorf("%s: %v", d, err)
	}
	atts, err := verify.Attestations(e.ctx, e.st, e.repo, d, e.sv)
	if err != nil {
		t.Fatalf("%s: %v", d, err)
	}
	if len(atts) != 2 {
		t.Errorf("%s: %d attestations, want 2", d, len(atts))
	}
	var doc sbom.Document
	var pred provenance.Predicate
	for typ, into := range map[string]any{sbom.PredicateType: &doc, provenance.PredicateType: &pred} {
		a, ok := atts[typ]
		if !ok {
			t.Fatalf("%s: no %s attestation", d, typ)
		}
		want := []sign.Subject{{Name: e.repo, Digest: map[string]string{"sha256": d.Hex}}}
		if !reflect.DeepEqual(a.Statement.Subject, want) {
			t.Errorf("%s: %s subject %+v, want %+v", d, typ, a.Statement.Subject, want)
		}
		if err := json.Unmarshal(a.Statement.Predicate, into); err != nil {
			t.Fatalf("%s: %s predicate: %v", d, typ, err)
		}
	}
	// Exactly one signature, one SBOM, one provenance.
	for tag, n := range map[string]int{sign.SignatureTag(d): 1, sign.AttestationTag(d): 2} {
		img, err := e.st.Get(e.ctx, e.repo, tag)
		if err != nil {
			t.Fatal(err)
		}
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		if len(layers) != n {
			t.Errorf("%s: %d layers, want %d", tag, len(layers), n)
		}
	}
	return doc, pred
}

func (e *env) checkProvenance(t *testing.T, pred provenance.Predicate, platforms []string) {
	t.Helper()
	if err := verify.Provenance(pred, provenance.BuilderID, "https://github.com/example/hello.git"); err != nil {
		t.Error(err)
	}
	want := provenance.ExternalParameters{
		Package: importPath, Workdir: "sub", Platforms: platforms,
		Flags: []string{"-trimpath"}, Ldflags: []string{"-s", "-w"}, Env: []string{"CGO_ENABLED"},
		GOFLAGS: "-mod=readonly", Base: base.StaticName, SourceDateEpoch: created.Unix(),
		Compression: "gzip", CompressionLevel: 6, Config: "sub/.ko.yaml",
	}
	if got := pred.BuildDefinition.ExternalParameters; !reflect.DeepEqual(got, want) {
		t.Errorf("external parameters\n got %+v\nwant %+v", got, want)
	}
	if pred.BuildDefinition.InternalParameters.Jobs != 3 {
		t.Errorf("jobs %d, want 3", pred.BuildDefinition.InternalParameters.Jobs)
	}
	src, _ := pred.Dependency(provenance.DepSource)
	if src.URI != "git+https://github.com/example/hello" || src.Digest["gitCommit"] != commit || src.Annotations["dirty"] != true {
		t.Errorf("source dependency %+v", src)
	}
	goDep, _ := pred.Dependency(provenance.DepGo)
	if goDep.URI != "https://go.dev/dl/"+testBuildInfo(t).GoVersion {
		t.Errorf("go dependency %+v", goDep)
	}
	b, _ := pred.Dependency(provenance.DepBase)
	if !reflect.DeepEqual(b.Digest, map[string]string{"sha256": strings.TrimPrefix(baseDigest, "sha256:")}) {
		t.Errorf("base dependency %+v", b)
	}
	if pred.RunDetails.Builder.Version["kiln"] != "v9.8.7" {
		t.Errorf("builder version %v", pred.RunDetails.Builder.Version)
	}
	if pred.RunDetails.Metadata.StartedOn != "2026-02-03T04:05:06Z" || pred.RunDetails.Metadata.FinishedOn != "2026-02-03T04:06:06Z" {
		t.Errorf("metadata %+v", pred.RunDetails.Metadata)
	}
}

func (e *env) checkSBOM(t *testing.T, doc sbom.Document, d v1.Hash, platform string) {
	t.Helper()
	if doc.SPDXVersion != "SPDX-2.3" || doc.Name != e.repo+"@"+d.String() {
		t.Errorf("SBOM %q named %q, want SPDX-2.3 named %s@%s", doc.SPDXVersion, doc.Name, e.repo, d)
	}
	if want := "Tool: kiln-v9.8.7"; len(doc.CreationInfo.Creators) != 1 || doc.CreationInfo.Creators[0] != want || doc.CreationInfo.Created != "2026-02-03T04:05:06Z" {
		t.Errorf("creation info %+v", doc.CreationInfo)
	}
	names := map[string]sbom.Package{}
	for _, p := range doc.Packages {
		names[p.Name] = p
	}
	main := testBuildInfo(t).Main.Path
	for _, want := range []string{e.repo, main, "go", "static", "ca-certificates", "tzdata"} {
		if _, ok := names[want]; !ok {
			t.Errorf("SBOM lacks the package %q", want)
		}
	}
	if img := names[e.repo]; img.VersionInfo != d.String() || img.Comment != "platform "+platform {
		t.Errorf("image package %+v, want %s on %s", img, d, platform)
	}
	if doc.ExtractedLicenses == nil {
		t.Error("the static base's tzdata licence is not declared")
	}
}

func TestResultImage(t *testing.T) {
	for name, mk := range map[string]func(*testing.T) *env{
		"registry": registryEnv,
		"layout": func(t *testing.T) *env {
			return setup(t, &sign.LayoutStore{Dir: t.TempDir()}, "kiln.local/example.com/hello")
		},
	} {
		t.Run(name, func(t *testing.T) {
			e := mk(t)
			res, d := e.pushImage(t)
			if err := attest.Result(e.ctx, e.opts, res); err != nil {
				t.Fatalf("Result: %v", err)
			}
			doc, pred := e.checkAttested(t, d)
			e.checkSBOM(t, doc, d, "linux/amd64")
			e.checkProvenance(t, pred, []string{"linux/amd64"})

			// Attesting again replaces rather than piles up.
			if err := attest.Result(e.ctx, e.opts, res); err != nil {
				t.Fatalf("second Result: %v", err)
			}
			e.checkAttested(t, d)
		})
	}
}

func TestResultIndex(t *testing.T) {
	e := registryEnv(t)
	idx, err := random.Index(128, 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewTag(e.repo + ":latest")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	top, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	plats := []string{"linux/amd64", "linux/arm64", "linux/s390x"}
	var images []pipeline.PlatformResult
	var children []v1.Hash
	for i, m := range im.Manifests {
		images = append(images, pipeline.PlatformResult{Platform: plats[i], Digest: m.Digest.String(), BuildInfo: testBuildInfo(t)})
		children = append(children, m.Digest)
	}
	if err := attest.Result(e.ctx, e.opts, e.result(t, top.String(), images)); err != nil {
		t.Fatalf("Result: %v", err)
	}
	for i, d := range children {
		doc, pred := e.checkAttested(t, d)
		e.checkSBOM(t, doc, d, plats[i])
		e.checkProvenance(t, pred, plats)
	}
	doc, pred := e.checkAttested(t, top)
	if doc.Name != e.repo+"@"+top.String() {
		t.Errorf("index SBOM names %q", doc.Name)
	}
	e.checkProvenance(t, pred, plats)

	// Attachments names exactly the tags Result wrote: the index's and
	// each platform's.
	res := e.result(t, top.String(), images)
	got := attest.Attachments(res, sign.FormatTags)
	if len(got) != 1+len(children) {
		t.Fatalf("Attachments lists %d manifests, want %d", len(got), 1+len(children))
	}
	for i, a := range got {
		want := top
		if i > 0 {
			want = children[i-1]
		}
		if a.Manifest != e.repo+"@"+want.String() || a.Format != sign.FormatTags {
			t.Errorf("attachment %d = %+v, want %s@%s in tags", i, a, e.repo, want)
		}
		for _, ref := range []string{a.Signature, a.Attestations} {
			repo, tag, _ := strings.Cut(strings.TrimPrefix(ref, e.repo), ":")
			if repo != "" {
				t.Errorf("%s is not in %s", ref, e.repo)
			}
			if _, err := e.st.Get(e.ctx, e.repo, tag); err != nil {
				t.Errorf("%s: %v", ref, err)
			}
		}
	}
	for _, a := range attest.Attachments(res, sign.FormatReferrers) {
		if a.Signature != a.Manifest || a.Attestations != a.Manifest {
			t.Errorf("referrers attachment %+v does not name the manifest", a)
		}
	}
}

func TestResultErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		edit    func(*pipeline.Result)
		mention string
	}{
		{"no build info", func(r *pipeline.Result) { r.Images[0].BuildInfo = nil }, "no Go build info"},
		{"no build info in the second image", func(r *pipeline.Result) {
			r.Images = append(r.Images, pipeline.PlatformResult{Platform: "linux/arm64", Digest: "sha256:" + strings.Repeat("4", 64)})
		}, "linux/arm64"},
		{"no images", func(r *pipeline.Result) { r.Images = nil }, "no image"},
		{"bad digest", func(r *pipeline.Result) { r.Digest = "sha256:xyz" }, "sha256:xyz"},
		{"bad child digest", func(r *pipeline.Result) {
			r.Images = append(r.Images, pipeline.PlatformResult{Platform: "linux/arm64", Digest: "nope", BuildInfo: r.Images[0].BuildInfo})
		}, "nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t, &sign.LayoutStore{Dir: t.TempDir()}, "kiln.local/hello")
			res, d := e.pushImage(t)
			tc.edit(&res)
			err := attest.Result(e.ctx, e.opts, res)
			if err == nil {
				t.Fatal("Result succeeded")
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("error %q does not mention %q", err, tc.mention)
			}
			// Nothing is half-done: the image is neither signed nor attested.
			for _, tag := range []string{sign.SignatureTag(d), sign.AttestationTag(d)} {
				if _, err := e.st.Get(e.ctx, e.repo, tag); !errors.Is(err, sign.ErrNotFound) {
					t.Errorf("%s exists after a failed Result: %v", tag, err)
				}
			}
		})
	}
}

// TestResultRemoteBase: a registry base gets its digest and purl in the
// SBOM and no static contents.
func TestResultRemoteBase(t *testing.T) {
	e := setup(t, &sign.LayoutStore{Dir: t.TempDir()}, "kiln.local/hello")
	res, d := e.pushImage(t)
	res.Base, res.Record.BaseRef = baseRef, baseRef
	if err := attest.Result(e.ctx, e.opts, res); err != nil {
		t.Fatal(err)
	}
	doc, pred := e.checkAttested(t, d)
	var b *sbom.Package
	for i, p := range doc.Packages {
		if p.SPDXID == "SPDXRef-Base" {
			b = &doc.Packages[i]
		}
		if p.Name == "tzdata" || p.Name == "ca-certificates" {
			t.Errorf("a registry base lists the static base's %s", p.Name)
		}
	}
	if b == nil {
		t.Fatal("no base package")
	}
	if b.Name != baseRef || b.VersionInfo != baseDigest || len(b.ExternalRefs) != 1 || !strings.HasPrefix(b.ExternalRefs[0].Locator, "pkg:oci/static@"+baseDigest) {
		t.Errorf("base package %+v", b)
	}
	if dep, _ := pred.Dependency(provenance.DepBase); dep.URI != baseRef {
		t.Errorf("base dependency %+v", dep)
	}
}

func TestErrNoDestination(t *testing.T) {
	if attest.ErrNoDestination == nil || !strings.Contains(attest.ErrNoDestination.Error(), "registry") {
		t.Errorf("ErrNoDestination = %v", attest.ErrNoDestination)
	}
}
