package request

import (
	"reflect"
	"slices"
	"testing"

	"github.com/kilnbuild/kiln/internal/config"
)

// TestApplyOverrides: the request's labels, annotations and user win over
// every .ko.yaml entry ImageFor merges, and --disable-optimizations reaches
// default flags and builds' own flags; the caller's config is not changed.
func TestApplyOverrides(t *testing.T) {
	cfg := &config.Config{
		DefaultFlags: []string{"-tags=netgo"},
		Builds: []config.Build{
			{ID: "own", Main: "./cmd/own", Flags: []string{"-gcflags=all=-B"}},
			{ID: "inherits", Main: "./cmd/inherits"},
		},
		Kiln: config.Kiln{
			Defaults: config.Image{Labels: map[string]string{"team": "a", "keep": "k"}, User: "1000"},
			Builds: map[string]config.Image{
				"own":               {Labels: map[string]string{"team": "b"}, Annotations: map[string]string{"note": "config"}, User: "2000"},
				"example.com/m/cmd": {User: "3000"},
			},
		},
	}
	b := Build{Labels: map[string]string{"team": "flag"}, Annotations: map[string]string{"note": "flag"}, User: "65532", DisableOptimizations: true}
	got := b.applyOverrides(cfg)
	for _, id := range []string{"", "own"} {
		for _, ip := range []string{"", "example.com/m/cmd"} {
			img := got.ImageFor(id, ip)
			want := map[string]string{"team": "flag", "keep": "k"}
			if !reflect.DeepEqual(img.Labels, want) {
				t.Errorf("ImageFor(%q, %q).Labels = %v, want %v", id, ip, img.Labels, want)
			}
			if img.Annotations["note"] != "flag" || img.User != "65532" {
				t.Errorf("ImageFor(%q, %q) = annotations %v, user %q; want the request's", id, ip, img.Annotations, img.User)
			}
		}
	}
	if want := []string{"-tags=netgo", "-gcflags=all=-N -l"}; !slices.Equal(got.DefaultFlags, want) {
		t.Errorf("DefaultFlags = %q, want %q", got.DefaultFlags, want)
	}
	if want := []string{"-gcflags=all=-B", "-gcflags=all=-N -l"}; !slices.Equal(got.Builds[0].Flags, want) {
		t.Errorf("a build's own flags = %q, want %q", got.Builds[0].Flags, want)
	}
	if got.Builds[1].Flags != nil {
		t.Errorf("a build without flags got %q; it inherits the defaults", got.Builds[1].Flags)
	}
	// The caller's config is untouched.
	if cfg.Kiln.Defaults.Labels["team"] != "a" || cfg.Kiln.Builds["own"].User != "2000" || len(cfg.DefaultFlags) != 1 || len(cfg.Builds[0].Flags) != 1 {
		t.Errorf("applyOverrides changed its input: %+v", cfg)
	}
	// --ldflags replaces .ko.yaml's everywhere, as ko's.
	lf := Build{Ldflags: []string{"-X main.v=flag"}}.applyOverrides(cfg)
	if !slices.Equal(lf.DefaultLdflags, []string{"-X main.v=flag"}) || !slices.Equal(lf.Builds[0].Ldflags, []string{"-X main.v=flag"}) || !slices.Equal(lf.Builds[1].Ldflags, []string{"-X main.v=flag"}) {
		t.Errorf("ldflags: defaults %q, builds %q %q; want the request's", lf.DefaultLdflags, lf.Builds[0].Ldflags, lf.Builds[1].Ldflags)
	}
	if cfg.Builds[0].Ldflags != nil && slices.Contains(cfg.Builds[0].Ldflags, "-X main.v=flag") {
		t.Error("applyOverrides changed the caller's ldflags")
	}
	if same := (Build{}).applyOverrides(cfg); same != cfg {
		t.Error("a request without overrides copied the config")
	}
}
