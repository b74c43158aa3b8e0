package e2e

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/testutil"
)

// conformanceMinTests is the fewest results a full run of the pinned suite
// reports. The count depends on the registry: a failed blob upload is
// retried with the other upload methods, and each try is a result. The
// reference registry (distribution v3.1.2, 91 failures) reports 852, crane
// 0.22.1 (437 failures) 1015; one that passes everything reports about 840
// (estimated from those runs). A run far below that skipped whole parts.
const conformanceMinTests = 750

// conformanceEnv configures the OCI distribution-spec conformance suite
// (.ci/tools.sh pins it) for every workflow: pull, push, content discovery
// (tag list, referrers) and content management (deletes), with the names
// the pinned suite documents. Its older names (OCI_ROOT_URL, OCI_NAMESPACE,
// OCI_TEST_PULL, ...) still work but are deprecated, and
// OCI_HIDE_SKIPPED_WORKFLOWS, OCI_DELETE_MANIFEST_BEFORE_BLOBS and
// OCI_REPORT_DIR are no longer read at all. OCI_DATA_* stay at their
// defaults: every kind of content but sparse manifests.
func conformanceEnv(registry, resultsDir string) []string {
	return []string{
		"OCI_CONFIGURATION=", // no oci-conformance.yaml: the environment is the whole configuration
		"OCI_VERSION=1.1",    // spec version the defaults of the settings below come from
		"OCI_REGISTRY=" + registry,
		"OCI_TLS=disabled", // plain http
		"OCI_REPO1=conformance/test",
		"OCI_REPO2=conformance/other", // source of cross-repository mounts
		"OCI_RESULTS_DIR=" + resultsDir,
		"OCI_LOG=warn",
		"OCI_API_PULL=true",
		"OCI_API_PUSH=true",
		"OCI_API_BLOBS_MOUNT_ANONYMOUS=true",
		"OCI_API_TAGS_LIST=true", // content discovery
		"OCI_API_REFERRER=true",
		"OCI_API_TAGS_DELETE=true", // content management
		"OCI_API_MANIFESTS_DELETE=true",
		"OCI_API_BLOBS_DELETE=true",
		"OCI_API_TAGS_ATOMIC=true", // a deleted thing is gone at once
		"OCI_API_MANIFESTS_ATOMIC=true",
		"OCI_API_BLOBS_ATOMIC=true",
		"OCI_API_BLOBS_UPLOAD_CANCEL=true", // DELETE of an upload session
		// Left at their 1.1 defaults (off): ?tag= on a manifest PUT, a
		// required Docker-Content-Digest header, and sparse manifests.
	}
}

// TestRegistryConformance runs the OCI distribution-spec conformance suite
// against kiln's registry (cmd/server --registry-only) and fails on any
// failed, errored or skipped result. Its junit.xml, report.html,
// results.yaml, output.txt and summary.txt go to $KILN_ARTIFACTS/conformance
// (default artifacts/conformance in the checkout).
func TestRegistryConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: not in -short")
	}
	suite := testutil.RequireTool(t, "conformance.test")
	out := conformanceArtifactDir(t)
	for _, f := range []string{"junit.xml", "results.yaml", "report.html", "output.txt", "summary.txt"} {
		if err := os.Remove(filepath.Join(out, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err) // a stale junit.xml must never be read as this run's
		}
	}

	url := newRegistryProcess(t).url()

	ctx := context.Background()
	if d, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-30*time.Second))
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, suite)
	cmd.Dir = t.TempDir() // the suite would read ./oci-conformance.yaml and write ./results
	cmd.Env = append(withoutOCIEnv(os.Environ()), conformanceEnv(strings.TrimPrefix(url, "http://"), out)...)
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	start := time.Now()
	runErr := cmd.Run()
	elapsed := time.Since(start).Round(time.Millisecond)
	if err := os.WriteFile(filepath.Join(out, "output.txt"), output.Bytes(), 0o644); err != nil {
		t.Error(err)
	}
	if cmd.ProcessState == nil {
		t.Fatalf("conformance suite did not start: %v", runErr)
	}
	exit := cmd.ProcessState.ExitCode()
	if runErr != nil && exit <= 0 {
		t.Fatalf("conformance suite did not run to the end: %v\n%s", runErr, tail(output.String(), 4000))
	}

	res, err := readConformanceJUnit(filepath.Join(out, "junit.xml"))
	if err != nil {
		// The suite exits 0 when it cannot even load its configuration.
		t.Fatalf("conformance suite (exit %d) left no readable junit.xml: %v\n%s", exit, err, tail(output.String(), 4000))
	}
	passed := res.Tests - res.Failures - res.Errors - res.Skipped - res.Disabled
	totals := fmt.Sprintf("tests=%d passed=%d failures=%d errors=%d skipped=%d disabled=%d exit=%d time=%s",
		res.Tests, passed, res.Failures, res.Errors, res.Skipped, res.Disabled, exit, elapsed)
	t.Logf("conformance: %s (artifacts in %s)", totals, out)

	v := classifyConformance(res)
	summary := "conformance " + totals + "\n"
	for _, group := range []struct {
		tag   string
		lines []string
	}{{"FAIL", v.failed.names()}, {"SKIP", v.skipped.names()}, {"DISABLED", v.disabled.names()}} {
		for _, l := range group.lines {
			summary += group.tag + " " + l + "\n"
		}
	}
	if err := os.WriteFile(filepath.Join(out, "summary.txt"), []byte(summary), 0o644); err != nil {
		t.Error(err)
	}

	const show = 60 // lines of each list in the test log; summary.txt and report.html have all
	if res.Failures+res.Errors > 0 || len(v.failed) > 0 {
		t.Errorf("%d failed and %d errored results:\n  %s", res.Failures, res.Errors, v.failed.text(show))
	}
	if res.Skipped > 0 || len(v.skipped) > 0 {
		t.Errorf("%d skipped results with every workflow enabled (a behaviour the registry lacks, or a check that could not run):\n  %s",
			res.Skipped, v.skipped.text(show))
	}
	if len(v.disabled) > 0 {
		t.Errorf("%d checks disabled, so part of a workflow did not run:\n  %s", res.Disabled, v.disabled.text(show))
	}
	if exit != 0 {
		t.Errorf("conformance suite exited %d", exit)
	}
	if res.Tests < conformanceMinTests {
		t.Errorf("conformance suite reported %d results, want at least %d: part of it did not run", res.Tests, conformanceMinTests)
	}
}

// conformanceVerdict sorts the suite's results by what they mean here.
type conformanceVerdict struct {
	failed, skipped, disabled lines
}

// skipMarker is how the suite records a skipped check in a testcase's
// <system-err>: "NAME: skipping test:\n  REASON".
var skipMarker = regexp.MustCompile(`(?m)^(.*): skipping test:\n  (.*)$`)

func classifyConformance(res *conformanceResult) conformanceVerdict {
	v := conformanceVerdict{failed: lines{}, skipped: lines{}, disabled: lines{}}
	for _, c := range res.Cases {
		switch c.Status {
		case "passed", "skipped":
		default: // failure, error
			v.failed.add(c.Name, c.Status+": "+c.Errors)
		}
		// A testcase can hold several results, e.g. a passed delete and the
		// skipped check that it took effect at once; its status is the
		// highest (fail > pass > skip), so skips are found by their marker.
		marked := false
		for _, m := range skipMarker.FindAllStringSubmatch(c.Output, -1) {
			marked = true
			if strings.Contains(m[2], "is disabled in the configuration") {
				v.disabled.add(c.Name, m[2])
			} else {
				v.skipped.add(c.Name, m[2])
			}
		}
		if c.Status == "skipped" && !marked {
			// a check failed in a way the suite counts as an optional
			// feature missing, e.g. no OCI-Filters-Applied header
			v.skipped.add(c.Name, c.Errors)
		}
	}
	return v
}

// lines counts distinct (testcase, message) pairs: the suite repeats a
// testcase name for each blob or manifest it checks.
type lines map[[2]string]int

func (l lines) add(name, msg string) { l[[2]string{name, oneLine(msg, 240)}]++ }

func (l lines) text(max int) string {
	keys := make([][2]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+"\x00"+keys[i][1] < keys[j][0]+"\x00"+keys[j][1] })
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString("\n  ")
		}
		if i == max {
			fmt.Fprintf(&b, "… and %d more (see summary.txt and report.html)", len(keys)-max)
			break
		}
		b.WriteString(k[0] + ": " + k[1])
		if n := l[k]; n > 1 {
			fmt.Fprintf(&b, " (×%d)", n)
		}
	}
	return b.String()
}

// names is each distinct testcase name, with how often it appears.
func (l lines) names() []string {
	count := map[string]int{}
	for k, n := range l {
		count[k[0]] += n
	}
	out := make([]string, 0, len(count))
	for name, n := range count {
		if n > 1 {
			name += fmt.Sprintf(" (×%d)", n)
		}
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// conformanceArtifactDir is $KILN_ARTIFACTS/conformance, else
// artifacts/conformance in the checkout.
func conformanceArtifactDir(t *testing.T) string {
	t.Helper()
	base := os.Getenv("KILN_ARTIFACTS")
	if base == "" {
		base = filepath.Join(repoRoot(t), "artifacts")
	}
	dir, err := filepath.Abs(filepath.Join(base, "conformance"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// withoutOCIEnv drops the caller's OCI_* variables: only conformanceEnv
// configures the suite.
func withoutOCIEnv(env []string) []string {
	var keep []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "OCI_") {
			keep = append(keep, kv)
		}
	}
	return keep
}

// conformanceResult is what junit.xml says. The suite writes one
// <testsuites> with one <testsuite>; each <testcase> is a leaf of its test
// tree, named by its path ("OCI Conformance Test/sha256 blobs/mount/blob-mount"),
// with the verdict only in its status attribute (passed, failure, error,
// skipped), the failure in <system-out> and the HTTP exchange in
// <system-err>. The counts add up results, not testcases: one testcase can
// record two (a delete, and the HEAD proving it was immediate).
type conformanceResult struct {
	Tests, Failures, Errors, Skipped, Disabled int
	Cases                                      []conformanceCase
}

type conformanceCase struct {
	Name, Status   string
	Errors, Output string
}

func readConformanceJUnit(path string) (*conformanceResult, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc struct {
		XMLName  xml.Name `xml:"testsuites"`
		Tests    int      `xml:"tests,attr"`
		Failures int      `xml:"failures,attr"`
		Errors   int      `xml:"errors,attr"`
		Skipped  int      `xml:"skipped,attr"`
		Disabled int      `xml:"disabled,attr"`
		Suites   []struct {
			Cases []struct {
				Name      string `xml:"name,attr"`
				Status    string `xml:"status,attr"`
				SystemOut string `xml:"system-out"`
				SystemErr string `xml:"system-err"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	res := &conformanceResult{Tests: doc.Tests, Failures: doc.Failures, Errors: doc.Errors, Skipped: doc.Skipped, Disabled: doc.Disabled}
	for _, s := range doc.Suites {
		for _, c := range s.Cases {
			res.Cases = append(res.Cases, conformanceCase{Name: c.Name, Status: c.Status, Errors: c.SystemOut, Output: c.SystemErr})
		}
	}
	if len(res.Cases) == 0 {
		return nil, fmt.Errorf("%s has no test cases", path)
	}
	return res, nil
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}

func tail(s string, max int) string {
	if len(s) > max {
		return "…" + s[len(s)-max:]
	}
	return s
}
