package pipeline

import (
	"testing"

	"github.com/kilnbuild/kiln/internal/config"
	"github.com/kilnbuild/kiln/internal/testutil"
)

func TestPhasesAreMeasured(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, testutil.HelloModule)
	res := buildFaked(t, newFakeGo(t, dir, 0), dir, "", "", &config.Config{DefaultBaseImage: "scratch"}, "./cmd/hello")
	if p := res[0].Phases; p.Compile <= 0 || p.Layer <= 0 || p.Push <= 0 {
		t.Errorf("phases = %+v, want each > 0", p)
	}
}
