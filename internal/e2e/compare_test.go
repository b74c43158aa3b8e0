package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/internal/testutil"
)

// TestMakeCompare runs scripts/compare.sh (make compare) end to end: podman
// builds both targets of Dockerfile.reference, kiln builds ./cmd/server, and
// the report must show kiln's scratch image no larger than the multi-stage
// one and at least 99 % smaller than the naive one. The HTML page must
// render in headless Chromium with its chart and rows.
func TestMakeCompare(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: not in -short")
	}
	testutil.RequireTool(t, "podman")
	testutil.RequireTool(t, "debootstrap")
	root := repoRoot(t)
	kilnBin := filepath.Join(t.TempDir(), "kiln")
	gobuild := exec.Command("go", "build", "-o", kilnBin, "./cmd/kiln")
	gobuild.Dir = root
	if out, err := gobuild.CombinedOutput(); err != nil {
		t.Fatalf("building kiln: %v\n%s", err, out)
	}
	out := t.TempDir()
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "compare.sh"), out)
	cmd.Dir = root
	// Quick: each image is built once (the sizes and files do not change);
	// the timing rows are make compare's.
	cmd.Env = append(os.Environ(), "KILN="+kilnBin, "COMPARE_QUICK=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/compare.sh: %v\n%s", err, b)
	}

	var report struct {
		Images []struct {
			Ref            string `json:"ref"`
			CompressedSize int64  `json:"compressedSize"`
		} `json:"images"`
	}
	raw, err := os.ReadFile(filepath.Join(out, "comparison.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &report); err != nil {
		t.Fatal(err)
	}
	if len(report.Images) != 4 {
		t.Fatalf("report has %d images, want naive, multi-stage, kiln static, kiln scratch", len(report.Images))
	}
	naive, multi, kilnScratch := report.Images[0], report.Images[1], report.Images[3]
	if kilnScratch.CompressedSize > multi.CompressedSize {
		t.Errorf("kiln on scratch is %d bytes, the multi-stage scratch image %d: kiln must not be larger", kilnScratch.CompressedSize, multi.CompressedSize)
	}
	// 99.2 % before cmd/server carried the build service (SQLite in pure
	// Go, a git client, Prometheus); 98.5 % since.
	if red := 1 - float64(kilnScratch.CompressedSize)/float64(naive.CompressedSize); red < 0.98 {
		t.Errorf("kiln on scratch is %.2f %% smaller than the naive image, want at least 98 %%", red*100)
	}
	md, err := os.ReadFile(filepath.Join(out, "comparison.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| kiln, after a one-line edit |", "multi-stage"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("comparison.md lacks %q", want)
		}
	}
	checkHTMLRenders(t, filepath.Join(out, "comparison.html"))
}

// checkHTMLRenders loads the page in headless Chromium and reads back the
// DOM it rendered: the SVG chart with its bars and the table rows.
func checkHTMLRenders(t *testing.T, page string) {
	t.Helper()
	chromium := testutil.RequireTool(t, "chromium")
	cmd := exec.Command(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--dump-dom", "file://"+page)
	dom, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom: %v", err)
	}
	s := string(dom)
	if !strings.Contains(s, "<svg") || strings.Count(s, "<rect") < 8 {
		t.Errorf("rendered page has no chart with a bar per image and size (%d rects)", strings.Count(s, "<rect"))
	}
	if strings.Count(s, "<tr") < 5 {
		t.Errorf("rendered page has %d table rows, want a header and one per image at least", strings.Count(s, "<tr"))
	}
	shot := filepath.Join(t.TempDir(), "comparison.png")
	cmd = exec.Command(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--no-first-run", "--user-data-dir="+t.TempDir(), "--window-size=1200,1600", "--screenshot="+shot, "file://"+page)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium --screenshot: %v\n%s", err, out)
	}
	if st, err := os.Stat(shot); err != nil || st.Size() < 10000 {
		t.Errorf("screenshot %s: %v (a blank page is tiny)", shot, err)
	}
}
