package provenance_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/provenance"
)

const commit = "0123456789abcdef0123456789abcdef01234567"

func input() provenance.Input {
	return provenance.Input{
		Params: provenance.ExternalParameters{
			Package: "example.com/hello/cmd/hello", Workdir: "sub",
			Platforms: []string{"linux/amd64", "linux/arm64"},
			Flags:     []string{"-trimpath"}, Ldflags: []string{"-s", "-w"},
			Env: []string{"CGO_ENABLED"}, GOFLAGS: "-mod=mod",
			Base: "cgr.dev/chainguard/static:latest", SourceDateEpoch: 1700000000,
			Compression: "gzip", CompressionLevel: 6, Config: ".ko.yaml",
		},
		Jobs:        4,
		SourceURL:   "https://github.com/org/repo",
		Commit:      commit,
		Dirty:       true,
		GoVersion:   "go1.26.0",
		BaseDigest:  "sha256:" + "ab" + "cd0123456789abcdef0123456789abcdef0123456789abcdef0123456789",
		KilnVersion: "v1.2.3",
		Started:     time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("X", 3600)),
		Finished:    time.Date(2026, 1, 2, 3, 5, 0, 0, time.UTC),
	}
}

// TestNewJSON checks the predicate's JSON field by field.
func TestNewJSON(t *testing.T) {
	in := input()
	raw, err := json.Marshal(provenance.New(in))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"buildDefinition": map[string]any{
			"buildType": "https://github.com/kilnbuild/kiln/blob/main/docs/buildtype-go-image-v1.md",
			"externalParameters": map[string]any{
				"package":          "example.com/hello/cmd/hello",
				"workdir":          "sub",
				"platforms":        []any{"linux/amd64", "linux/arm64"},
				"flags":            []any{"-trimpath"},
				"ldflags":          []any{"-s", "-w"},
				"env":              []any{"CGO_ENABLED"},
				"goflags":          "-mod=mod",
				"base":             "cgr.dev/chainguard/static:latest",
				"sourceDateEpoch":  float64(1700000000),
				"compression":      "gzip",
				"compressionLevel": float64(6),
				"config":           ".ko.yaml",
			},
			"internalParameters": map[string]any{"jobs": float64(4)},
			"resolvedDependencies": []any{
				map[string]any{
					"name":        "source",
					"uri":         "git+https://github.com/org/repo",
					"digest":      map[string]any{"gitCommit": commit},
					"annotations": map[string]any{"dirty": true},
				},
				map[string]any{"name": "go", "uri": "https://go.dev/dl/go1.26.0"},
				map[string]any{
					"name":   "base",
					"uri":    "cgr.dev/chainguard/static:latest",
					"digest": map[string]any{"sha256": "abcd0123456789abcdef0123456789abcdef0123456789abcdef0123456789"},
				},
			},
		},
		"runDetails": map[string]any{
			"builder": map[string]any{
				"id":      "https://github.com/kilnbuild/kiln",
				"version": map[string]any{"kiln": "v1.2.3"},
			},
			"metadata": map[string]any{
				"invocationId": "example.com/hello/cmd/hello-" + "1767319445000000006",
				"startedOn":    "2026-01-02T02:04:05Z",
				"finishedOn":   "2026-01-02T03:05:00Z",
			},
		},
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Errorf("predicate\n got %s\nwant %s", g, w)
	}

	// It reads back into the same value.
	var back provenance.Predicate
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, provenance.New(in)) {
		t.Errorf("round trip changed the predicate:\n%+v\n%+v", back, provenance.New(in))
	}
}

func TestNewDependencies(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*provenance.Input)
		names []string
		check func(*testing.T, provenance.Predicate)
	}{
		{"all", func(*provenance.Input) {}, []string{"source", "go", "base"}, nil},
		{"no commit: no source", func(in *provenance.Input) { in.Commit = "" }, []string{"go", "base"}, nil},
		{"no remote: local source", func(in *provenance.Input) { in.SourceURL = "" }, []string{"source", "go", "base"},
			func(t *testing.T, p provenance.Predicate) {
				src, _ := p.Dependency(provenance.DepSource)
				if src.URI != "git+file:local" {
					t.Errorf("source URI %q, want git+file:local", src.URI)
				}
			}},
		{"clean tree", func(in *provenance.Input) { in.Dirty = false }, []string{"source", "go", "base"},
			func(t *testing.T, p provenance.Predicate) {
				src, _ := p.Dependency(provenance.DepSource)
				if src.Annotations["dirty"] != false {
					t.Errorf("dirty annotation %v, want false", src.Annotations["dirty"])
				}
			}},
		{"scratch: no base", func(in *provenance.Input) { in.BaseDigest = "" }, []string{"source", "go"}, nil},
		{"no go version", func(in *provenance.Input) { in.GoVersion = "" }, []string{"source", "base"}, nil},
		{"digest without algorithm", func(in *provenance.Input) { in.BaseDigest = "abc" }, []string{"source", "go", "base"},
			func(t *testing.T, p provenance.Predicate) {
				b, _ := p.Dependency(provenance.DepBase)
				if !reflect.DeepEqual(b.Digest, map[string]string{"sha256": "abc"}) {
					t.Errorf("base digest %v", b.Digest)
				}
			}},
		{"nothing", func(in *provenance.Input) { in.Commit, in.GoVersion, in.BaseDigest = "", "", "" }, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := input()
			tc.edit(&in)
			p := provenance.New(in)
			var names []string
			for _, d := range p.BuildDefinition.ResolvedDependencies {
				names = append(names, d.Name)
			}
			if !reflect.DeepEqual(names, tc.names) {
				t.Errorf("dependencies %v, want %v", names, tc.names)
			}
			for _, n := range []string{provenance.DepSource, provenance.DepGo, provenance.DepBase} {
				d, ok := p.Dependency(n)
				want := false
				for _, w := range tc.names {
					want = want || w == n
				}
				if ok != want || (ok && d.Name != n) || (!ok && !reflect.DeepEqual(d, provenance.ResourceDescriptor{})) {
					t.Errorf("Dependency(%q) = %+v, %v; want found=%v", n, d, ok, want)
				}
			}
			if tc.check != nil {
				tc.check(t, p)
			}
		})
	}
}

func TestDependency(t *testing.T) {
	p := provenance.New(input())
	src, ok := p.Dependency(provenance.DepSource)
	if !ok {
		t.Fatal("no source dependency")
	}
	want := provenance.ResourceDescriptor{
		Name: "source", URI: "git+https://github.com/org/repo",
		Digest:      map[string]string{"gitCommit": commit},
		Annotations: map[string]any{"dirty": true},
	}
	if !reflect.DeepEqual(src, want) {
		t.Errorf("source = %+v, want %+v", src, want)
	}
	if d, ok := p.Dependency("nope"); ok || d.Name != "" {
		t.Errorf("Dependency(nope) = %+v, %v", d, ok)
	}
	if _, ok := (provenance.Predicate{}).Dependency(provenance.DepGo); ok {
		t.Error("an empty predicate has a go dependency")
	}
}

func TestNewConstants(t *testing.T) {
	p := provenance.New(provenance.Input{})
	if p.BuildDefinition.BuildType != provenance.BuildType || p.RunDetails.Builder.ID != provenance.BuilderID {
		t.Errorf("build type %q, builder %q", p.BuildDefinition.BuildType, p.RunDetails.Builder.ID)
	}
	if provenance.PredicateType != "https://slsa.dev/provenance/v1" {
		t.Errorf("PredicateType = %q", provenance.PredicateType)
	}
}
