package main

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// maxInitBytes bounds what one of kiln's packages may allocate while it
// initialises. Every command pays every linked package's initialisers, so
// work that only some commands need (compiling patterns, parsing
// templates) belongs in sync.OnceValue, not in a package-level var.
const maxInitBytes = 64 << 10

// TestKilnPackagesInitialiseLightly runs this test binary again (it links
// what kiln links) with GODEBUG=inittrace=1 and checks the bytes each
// kiln package allocates in its initialisers: a count, not a time, so
// the machine's load does not change it.
func TestKilnPackagesInitialiseLightly(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	seen := 0
	for line := range strings.Lines(string(out)) {
		// init PKG @T ms, C ms clock, B bytes, A allocs
		f := strings.Fields(line)
		if len(f) < 9 || f[0] != "init" || !strings.HasPrefix(f[1], "github.com/kilnbuild/kiln/") {
			continue
		}
		seen++
		n, err := strconv.Atoi(f[7])
		if err != nil || f[8] != "bytes," {
			t.Fatalf("unexpected inittrace line %q", line)
		}
		if n > maxInitBytes {
			t.Errorf("%s allocates %d bytes when it initialises (at most %d): move the work into a sync.OnceValue", f[1], n, maxInitBytes)
		}
	}
	if seen == 0 {
		t.Fatalf("no inittrace lines for kiln's packages in:\n%s", out)
	}
}
