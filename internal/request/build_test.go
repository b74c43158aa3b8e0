package request

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	ok := Build{Packages: []string{"./cmd/app"}}
	for _, tc := range []struct {
		name string
		edit func(*Build)
		want string // "" for valid
	}{
		{"minimal", func(*Build) {}, ""},
		{"everything", func(b *Build) {
			*b = Build{Packages: []string{"./cmd/a", "example.com/b"}, Platforms: []string{"linux/amd64", "linux/arm/v7"}, Base: "scratch",
				Tags: []string{"v1.2.3", "latest"}, PreserveImportPaths: true, Compression: "zstd", CompressionLevel: 3,
				Sign: true, SignatureFormat: "referrers", Jobs: 4}
		}, ""},
		{"all platforms", func(b *Build) { b.Platforms = []string{"all"} }, ""},
		{"no packages", func(b *Build) { b.Packages = nil }, "no packages given"},
		{"empty package", func(b *Build) { b.Packages = []string{""} }, `package "" is not`},
		{"package with a newline", func(b *Build) { b.Packages = []string{"./a\n./b"} }, "is not an import path"},
		{"unknown platform", func(b *Build) { b.Platforms = []string{"linux/sparc"} }, `unknown platform "linux/sparc"`},
		{"base with a space", func(b *Build) { b.Base = "static latest" }, "is not an image reference"},
		{"tag with a colon", func(b *Build) { b.Tags = []string{"v1:2"} }, `tag "v1:2"`},
		{"empty tag", func(b *Build) { b.Tags = []string{""} }, `tag ""`},
		{"tag too long", func(b *Build) { b.Tags = []string{strings.Repeat("a", 129)} }, "is not a valid tag"},
		{"bare and base import paths", func(b *Build) { b.Bare, b.BaseImportPaths = true, true }, "exclude each other"},
		{"base and preserve import paths", func(b *Build) { b.BaseImportPaths, b.PreserveImportPaths = true, true }, "exclude each other"},
		{"unknown compression", func(b *Build) { b.Compression = "brotli" }, `unknown compression "brotli"`},
		{"gzip level too high", func(b *Build) { b.Compression, b.CompressionLevel = "gzip", 10 }, "level"},
		{"negative level", func(b *Build) { b.Compression, b.CompressionLevel = "zstd", -1 }, "level"},
		{"none with a level", func(b *Build) { b.Compression, b.CompressionLevel = "none", 1 }, "compression none takes no level"},
		{"auto level too high", func(b *Build) { b.Compression, b.CompressionLevel = "auto", 10 }, "auto's level is gzip's"},
		{"unknown signature format", func(b *Build) { b.Sign, b.SignatureFormat = true, "bundle" }, `unknown signature format "bundle"`},
		{"negative jobs", func(b *Build) { b.Jobs = -1 }, "jobs -1"},
		{"image fields", func(b *Build) {
			b.Labels, b.Annotations, b.User, b.DisableOptimizations = map[string]string{"a": "b=c"}, map[string]string{"x": ""}, "65532:65532", true
		}, ""},
		{"empty label key", func(b *Build) { b.Labels = map[string]string{"": "v"} }, `label ""`},
		{"label key with =", func(b *Build) { b.Labels = map[string]string{"a=b": "v"} }, `label "a=b"`},
		{"annotation key with a newline", func(b *Build) { b.Annotations = map[string]string{"a\nb": "v"} }, "annotation"},
		{"user with a newline", func(b *Build) { b.User = "root\nx" }, "is not a user"},
		{"sbom kinds and debug", func(b *Build) { b.SBOM, b.Debug = "cyclonedx", true }, ""},
		{"debug with one platform Delve runs on", func(b *Build) { b.Debug, b.Platforms = true, []string{"linux/s390x,linux/arm64"} }, ""},
		{"debug with the config's platforms", func(b *Build) { b.Debug = true }, ""},
		{"unknown sbom kind", func(b *Build) { b.SBOM = "spdx-tag-value" }, `--sbom "spdx-tag-value": unknown SBOM kind`},
		{"debug on no platform Delve runs on", func(b *Build) { b.Debug, b.Platforms = true, []string{"linux/arm/v7"} }, "Delve runs on linux/amd64 and linux/arm64 only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := ok
			tc.edit(&b)
			err := b.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("valid, want an error saying %q", tc.want)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q is not one line saying %q", msg, tc.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %q is not ErrInvalid", err)
			}
		})
	}
}

// TestBuildJSON: the service's JSON names every field, and a field Build
// does not have is refused by a strict decoder.
func TestBuildJSON(t *testing.T) {
	doc := `{"packages":["./cmd/app"],"platforms":["linux/arm64"],"base":"scratch","tags":["v1"],
		"bare":false,"baseImportPaths":true,"preserveImportPaths":false,"compression":"zstd","compressionLevel":3,
		"sign":true,"signatureFormat":"referrers","jobs":2}`
	var b Build
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		t.Fatal(err)
	}
	want := Build{Packages: []string{"./cmd/app"}, Platforms: []string{"linux/arm64"}, Base: "scratch", Tags: []string{"v1"},
		BaseImportPaths: true, Compression: "zstd", CompressionLevel: 3, Sign: true, SignatureFormat: "referrers", Jobs: 2}
	if !reflect.DeepEqual(b, want) {
		t.Errorf("decoded %+v, want %+v", b, want)
	}
	dec = json.NewDecoder(strings.NewReader(`{"packages":["./cmd/app"],"output":"elsewhere"}`))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err == nil || !strings.Contains(err.Error(), "output") {
		t.Errorf("a request naming its output decoded: %v", err)
	}
}
