package pipeline

import (
	"context"
	"os"
	"testing"

	"github.com/kilnbuild/kiln/internal/config"
	"github.com/kilnbuild/kiln/internal/gobuild"
	"github.com/kilnbuild/kiln/internal/publish"
	"github.com/kilnbuild/kiln/internal/testutil"
)

func TestPhasesAreMeasured(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, testutil.HelloModule)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), Options{
		Dir:       dir,
		Builder:   &gobuild.Builder{Runner: &fakeGo{dir: dir, self: self}},
		Naming:    Naming{Repo: LocalRepo},
		Publisher: &publish.Layout{Dir: t.TempDir()},
		Config:    &config.Config{DefaultBaseImage: "scratch"},
	}, []string{"./cmd/hello"})
	if err != nil {
		t.Fatal(err)
	}
	if p := res[0].Phases; p.Compile <= 0 || p.Layer <= 0 || p.Push <= 0 {
		t.Errorf("phases = %+v, want each > 0", p)
	}
}
