package compare_test

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kilnbuild/kiln/internal/compare"
	"github.com/kilnbuild/kiln/internal/sbom"
	"github.com/kilnbuild/kiln/internal/sign"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// sbomAttachment is the unsigned SBOM kiln build (and ko) attach by
// default at sha256-<hex>.sbom, in kind k.
func sbomAttachment(t testing.TB, k sbom.Kind, d v1.Hash) v1.Image {
	t.Helper()
	doc := []byte("not json: only SPDX is read")
	if k == sbom.KindSPDX {
		doc, _ = json.Marshal(map[string]any{
			"spdxVersion": "SPDX-2.3",
			"packages": []map[string]any{
				{"name": "example.com/app", "SPDXID": "SPDXRef-Image", "versionInfo": d.String(), "primaryPackagePurpose": "CONTAINER"},
				{"name": "example.com/hello", "SPDXID": "SPDXRef-Main", "versionInfo": "v1.2.3"},
				{"name": "golang.org/x/net", "SPDXID": "SPDXRef-Dep", "versionInfo": "v0.40.0"},
			},
		})
	}
	img, err := sbom.Attachment(k, doc)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestUnsignedSBOM: the SBOM kiln build attaches by default (SPDX at
// sha256-<hex>.sbom, unsigned) is read from a registry and from the local
// store, and said to be unsigned; a signed .att SBOM is preferred; an SBOM
// in another format is noted, not read.
func TestUnsignedSBOM(t *testing.T) {
	_, slim := fixtures(t)
	d, _ := slim.img.Digest()
	host := testutil.Registry(t)
	put := func(repo string, tags map[string]v1.Image) string {
		t.Helper()
		for tag, img := range tags {
			r, err := name.ParseReference(host + "/" + repo + ":" + tag)
			if err != nil {
				t.Fatal(err)
			}
			if err := remote.Write(r, img); err != nil {
				t.Fatal(err)
			}
		}
		return host + "/" + repo + ":slim"
	}
	store := filepath.Join(t.TempDir(), "store")
	writeLayout(t, store, map[string]v1.Image{
		"kiln.local/slim:latest":         slim.img,
		"kiln.local/slim:" + sbom.Tag(d): sbomAttachment(t, sbom.KindSPDX, d),
	})

	fromSBOM := []compare.Package{
		{Name: "example.com/hello", Version: "v1.2.3", Type: "spdx", Location: sbom.Tag(d)},
		{Name: "golang.org/x/net", Version: "v0.40.0", Type: "spdx", Location: sbom.Tag(d)},
	}
	for _, tc := range []struct {
		name, ref string
		tag       string // the SBOM read; "" for none
		form      string
		packages  []compare.Package
		note      string // in the image's notes
		table     string // in the rendered table
	}{
		{name: "registry, unsigned SPDX", ref: put("unsigned", map[string]v1.Image{"slim": slim.img, sbom.Tag(d): sbomAttachment(t, sbom.KindSPDX, d)}),
			tag: sbom.Tag(d), form: compare.SBOMUnsigned, packages: fromSBOM, table: "SPDX-2.3, unsigned"},
		{name: "local store, unsigned SPDX", ref: "kiln.local/slim",
			tag: sbom.Tag(d), form: compare.SBOMUnsigned, packages: fromSBOM, table: "SPDX-2.3, unsigned"},
		{name: "the attestation first", ref: put("both", map[string]v1.Image{"slim": slim.img, sbom.Tag(d): sbomAttachment(t, sbom.KindSPDX, d), sign.AttestationTag(d): sbomAttestation(t, d)}),
			tag: sign.AttestationTag(d), form: compare.SBOMAttestation, table: "SPDX-2.3, signature not checked"},
		{name: "CycloneDX is noted", ref: put("cyclonedx", map[string]v1.Image{"slim": slim.img, sbom.Tag(d): sbomAttachment(t, sbom.KindCycloneDX, d)}),
			note: "an SBOM in application/vnd.cyclonedx+json at " + sbom.Tag(d) + " was not read: compare reads SPDX", table: "none attached"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := compareRefs(t, compare.Options{StoreDir: store}, tc.ref)
			im := r.Images[0]
			if tc.tag == "" {
				if im.SBOM != nil || im.PackageSource != compare.PackagesFromImage {
					t.Errorf("sbom %+v, source %s: want none", im.SBOM, im.PackageSource)
				}
			} else {
				if im.SBOM == nil || im.PackageSource != compare.PackagesFromSBOM {
					t.Fatalf("no SBOM read: %+v, notes %q", im.SBOM, im.Notes)
				}
				if im.SBOM.Tag != tc.tag || im.SBOM.Form != tc.form || im.SBOM.SPDXVersion != "SPDX-2.3" || im.SBOM.SignatureVerified {
					t.Errorf("sbom %+v, want tag %s form %s", im.SBOM, tc.tag, tc.form)
				}
			}
			if tc.packages != nil && !reflect.DeepEqual(im.Packages, tc.packages) {
				t.Errorf("packages %+v, want %+v", im.Packages, tc.packages)
			}
			if tc.note != "" && !slices.Contains(im.Notes, tc.note) {
				t.Errorf("notes %q, want %q", im.Notes, tc.note)
			}
			var out bytes.Buffer
			if err := compare.Render(&out, r, compare.FormatMarkdown); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), "| sbom | "+tc.table+" |") {
				t.Errorf("the sbom row does not read %q:\n%s", tc.table, out.String())
			}
		})
	}
}
