package pipeline

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/internal/config"
	"github.com/kilnbuild/kiln/internal/gobuild"
	"github.com/kilnbuild/kiln/internal/layer"
	"github.com/kilnbuild/kiln/internal/publish"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// kiln strips symbols and DWARF by default (-s -w; ko adds no ldflags), but
// a build whose flags disable optimizations (--disable-optimizations) is
// for a debugger and keeps them. Ldflags the config sets are kept as they
// are.
func TestDisableOptimizationsKeepsSymbols(t *testing.T) {
	for _, tc := range []struct {
		name           string
		flags, ldflags []string
		want           string // the -ldflags= argument, "" for none
	}{
		{"default", nil, nil, "-ldflags=-s -w"},
		{"other gcflags", []string{"-gcflags=-d=checkptr"}, nil, "-ldflags=-s -w"},
		{"disable-optimizations", []string{"-gcflags=all=-N -l"}, nil, ""},
		{"two-argument form", []string{"-gcflags", "all=-N -l"}, nil, ""},
		{"no pattern", []string{"-trimpath", "-gcflags=-N -l"}, nil, ""},
		{"config ldflags kept", []string{"-gcflags=all=-N -l"}, []string{"-s", "-w", "-X=main.v=1"}, "-ldflags=-s -w -X=main.v=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			testutil.WriteFiles(t, dir, map[string]string{"go.mod": "module example.com/big\n\ngo 1.22\n", "cmd/big/.keep": ""})
			fake := &argsGo{fakeGo: newFakeGo(t, dir, 1<<10)}
			_, err := Run(context.Background(), Options{
				Dir:       dir,
				Config:    &config.Config{DefaultBaseImage: "scratch", DefaultFlags: tc.flags, DefaultLdflags: tc.ldflags},
				Builder:   &gobuild.Builder{Runner: fake},
				Naming:    Naming{Repo: LocalRepo},
				Publisher: &publish.ToLayout{Dir: t.TempDir()},
				Compress:  &layer.Compression{Algorithm: layer.None}, // the layers are not what is tested
			}, []string{"./cmd/big"})
			if err != nil {
				t.Fatal(err)
			}
			if len(fake.builds) == 0 {
				t.Fatal("no go build ran")
			}
			for _, args := range fake.builds {
				i := slices.IndexFunc(args, func(a string) bool { return strings.HasPrefix(a, "-ldflags=") })
				got := ""
				if i >= 0 {
					got = args[i]
				}
				if got != tc.want {
					t.Errorf("go %q: ldflags %q, want %q", args, got, tc.want)
				}
			}
		})
	}
}
