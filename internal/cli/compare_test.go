package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	specs "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestCompareCommand(t *testing.T) {
	dir := t.TempDir()
	big, err := random.Image(64<<10, 2)
	if err != nil {
		t.Fatal(err)
	}
	small, err := random.Image(1<<10, 1)
	if err != nil {
		t.Fatal(err)
	}
	writeNamed := func(d string, imgs map[string]v1.Image) {
		p, err := layout.Write(d, empty.Index)
		if err != nil {
			t.Fatal(err)
		}
		for n, img := range imgs {
			if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{specs.AnnotationRefName: n})); err != nil {
				t.Fatal(err)
			}
		}
	}
	writeNamed(filepath.Join(dir, "lay"), map[string]v1.Image{"big": big, "small": small})
	storeDir := filepath.Join(dir, "store")
	writeNamed(storeDir, map[string]v1.Image{"kiln.local/small:latest": small})

	run := func(args ...string) (stdout string, err error) {
		var out bytes.Buffer
		inv := Invocation{Args: args, Env: []string{"HOME=" + dir, "KILN_STORE=" + storeDir}, Dir: dir, Stdout: &out, Stderr: io.Discard}
		cmd := newCompareCommand(inv)
		cmd.SetArgs(args)
		cmd.SetOut(&out)
		cmd.SetErr(io.Discard)
		cmd.SilenceUsage, cmd.SilenceErrors = true, true
		err = cmd.ExecuteContext(context.Background())
		return out.String(), err
	}

	out, err := run("oci:lay:big", "kiln.local/small")
	if err != nil || !strings.Contains(out, "compressed") || !strings.Contains(out, "kiln.local/small") {
		t.Errorf("table: %v\n%s", err, out)
	}

	out, err = run("--max-growth", "5", "oci:lay:small", "oci:lay:big")
	if err == nil || !strings.Contains(err.Error(), "oci:lay:big is ") || !strings.Contains(err.Error(), "max-growth budget of 5%") || strings.Contains(err.Error(), "\n") {
		t.Errorf("growth budget: err = %v", err)
	}
	if !strings.Contains(out, "uncompressed") {
		t.Errorf("the report was not printed before the budget error:\n%s", out)
	}
	if _, err := run("--max-size", "100B", "--max-growth", "0", "oci:lay:big", "oci:lay:small"); err == nil || !strings.Contains(err.Error(), "oci:lay:small is ") {
		t.Errorf("size budget: err = %v", err)
	}
	if _, err := run("--max-size", "10MB", "--max-growth", "0", "oci:lay:big", "oci:lay:small"); err != nil {
		t.Errorf("within budget: %v", err)
	}

	out, err = run("--format", "html", "--output", "report.html", "--platform", "linux/amd64", "oci:lay:big", "oci:lay:small")
	page, rerr := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil || rerr != nil || out != "" || !bytes.Contains(page, []byte("<svg")) {
		t.Errorf("--output: %v %v, stdout %q", err, rerr, out)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"oci:lay:big"}, "requires at least 2 arg"},
		{[]string{"--format", "yaml", "oci:lay:big", "oci:lay:small"}, `--format: unknown format "yaml"`},
		{[]string{"--max-size", "big", "oci:lay:big", "oci:lay:small"}, "--max-size: invalid size"},
		{[]string{"--max-growth", "x", "oci:lay:big", "oci:lay:small"}, "--max-growth: invalid percentage"},
		{[]string{"--platform", "amd64", "oci:lay:big", "oci:lay:small"}, "--platform"},
		{[]string{"--output", "nodir/r.txt", "oci:lay:big", "oci:lay:small"}, "--output nodir/r.txt: no such directory"},
		{[]string{"oci:lay:big", "oci:lay:none"}, "oci:lay:none: no image named none"},
		{[]string{"--max-read", "lots", "oci:lay:big", "oci:lay:small"}, "--max-read: invalid size"},
		{[]string{"--max-file", "0", "oci:lay:big", "oci:lay:small"}, "--max-file: the budget must be more than 0 bytes"},
		{[]string{"--max-temp-disk", "-1", "oci:lay:big", "oci:lay:small"}, "--max-temp-disk: invalid size"},
		{[]string{"--max-entries", "0", "oci:lay:big", "oci:lay:small"}, "--max-entries: the budget must be more than 0"},
		{[]string{"--max-json", "5MiB", "oci:lay:big", "oci:lay:small"}, "--max-json: at most 4MiB"},
		{[]string{"--max-json", "100B", "oci:lay:big", "oci:lay:small"}, "larger than the budget of 100 bytes for a JSON document (--max-json)"},
		{[]string{"--max-read", "1KiB", "oci:lay:big", "oci:lay:small"}, "more bytes read than the budget of 1KiB: stopped (raise --max-read"},
		{[]string{"--max-entries", "1", "oci:lay:big", "oci:lay:small"}, "more entries than the budget of 1"},
	} {
		if _, err := run(tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.args, err, tc.want)
		}
	}
}
