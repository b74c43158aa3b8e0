package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/internal/testutil"
)

// TestCompareScriptNames runs scripts/compare.sh against stand-ins for
// podman and kiln that only log their arguments. Each run must build, save
// and untag its own kiln-compare/NAME:run-PID tags, so that make compare,
// make bench and TestMakeCompare at once never save each other's images,
// and must leave the plain kiln-compare/NAME names on its images (podman
// untag with no name removes every name of the image).
func TestCompareScriptNames(t *testing.T) {
	testutil.RequireTool(t, "bash")
	root := repoRoot(t)
	bin, out := t.TempDir(), t.TempDir()
	log := filepath.Join(bin, "podman.log")
	gover, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		t.Fatal(err)
	}
	// The stand-in builder image "exists" with the script's label, so no
	// debootstrap runs.
	podman := `#!/bin/sh
echo "$*" >>` + log + `
case "$*" in
*"image inspect"*) echo "bookworm-` + strings.TrimSpace(string(gover)) + `-v4" ;;
*--version*) echo "podman version 0" ;;
esac
exit 0
`
	if err := os.WriteFile(filepath.Join(bin, "podman"), []byte(podman), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "kiln"), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "compare.sh"), out)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "KILN="+filepath.Join(bin, "kiln"))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/compare.sh: %v\n%s", err, b)
	}
	raw, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	calls := strings.Split(strings.TrimSpace(string(raw)), "\n")
	run := regexp.MustCompile(`kiln-compare/(naive|multistage|plain):run-[0-9]+`)
	want := map[string]int{"build": 0, "save": 0, "tag": 0, "untag": 0}
	for _, c := range calls {
		f := strings.Fields(strings.TrimPrefix(c, "--runtime runc "))
		if len(f) == 0 {
			continue
		}
		if _, ok := want[f[0]]; !ok || !strings.Contains(c, "kiln-compare/") {
			continue
		}
		want[f[0]]++
		switch f[0] {
		case "build", "save":
			if !run.MatchString(c) {
				t.Errorf("podman %s without the run's own tag: %s", f[0], c)
			}
		case "tag":
			if len(f) != 3 || !run.MatchString(f[1]) || f[2] != strings.SplitN(f[1], ":", 2)[0] {
				t.Errorf("podman tag should give the run's image its plain name: %s", c)
			}
		case "untag":
			// podman untag IMAGE with no NAME removes all the image's names.
			if len(f) != 3 || f[1] != f[2] || !run.MatchString(f[2]) {
				t.Errorf("podman untag must name the one tag it removes (IMAGE NAME): %s", c)
			}
		}
	}
	for verb, n := range want {
		if n == 0 {
			t.Errorf("no podman %s of a kiln-compare image in:\n%s", verb, raw)
		}
	}
	md, err := os.ReadFile(filepath.Join(out, "comparison.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "at commit ") || !strings.Contains(string(md), "Load average (1 min): ") {
		t.Errorf("comparison.md does not say the commit and the load average:\n%s", md)
	}
}
