package internal_test

import (
	"os/exec"
	"strings"
	"testing"
)

// notLinked are modules a program must not link: the SQL driver is the
// server's alone (kiln build --remote shares the record types through
// internal/buildrecord, not the store).
var notLinked = map[string][]string{
	"github.com/kilnbuild/kiln/cmd/kiln": {"modernc.org/sqlite", "github.com/kilnbuild/kiln/internal/records"},
}

func TestProgramsLinkOnlyWhatTheyNeed(t *testing.T) {
	for prog, banned := range notLinked {
		out, err := exec.Command("go", "list", "-deps", prog).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", prog, err, out)
		}
		deps := strings.Fields(string(out))
		for _, b := range banned {
			for _, d := range deps {
				if d == b || strings.HasPrefix(d, b+"/") {
					t.Errorf("%s links %s: keep it out (it costs the CLI start-up time and size)", prog, d)
					break
				}
			}
		}
	}
}
