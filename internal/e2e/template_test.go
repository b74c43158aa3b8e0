package e2e

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kilnbuild/kiln/internal/cli"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// everyField names every field ko v0.19.1's templates have, each set into
// a variable of its own with -X: name and template.
var everyField = [][2]string{
	{"env", "{{.Env.KILN_TEMPLATE_VALUE}}"},
	{"ldflags", "[{{.Env.LDFLAGS}}]"},
	{"goarch", "{{.Env.GOARCH}}"},
	{"cgo", "{{.Env.CGO_ENABLED}}"},
	{"goenvos", "{{.GoEnv.GOOS}}"},
	{"goenvflags", "{{.GoEnv.GOFLAGS}}"},
	{"goenvmod", "{{.GoEnv.GOMOD}}"},
	{"date", "{{.Date}}"},
	{"timestamp", "{{.Timestamp}}"},
	{"branch", "{{.Git.Branch}}"},
	{"tag", "{{.Git.Tag}}"},
	{"short", "{{.Git.ShortCommit}}"},
	{"full", "{{.Git.FullCommit}}"},
	{"commitdate", "{{.Git.CommitDate}}"},
	{"committimestamp", "{{.Git.CommitTimestamp}}"},
	{"treestate", "{{.Git.TreeState}}"},
	{"isdirty", "{{.Git.IsDirty}}"},
	{"isclean", "{{.Git.IsClean}}"},
}

// fieldsModule is a module whose ./cmd/fields prints each of everyField's
// variables as name=value, with a .ko.yaml that sets them.
func fieldsModule() map[string]string {
	var vars, prints, ldflags strings.Builder
	for _, f := range everyField {
		fmt.Fprintf(&vars, "var %s string\n", f[0])
		fmt.Fprintf(&prints, "\tfmt.Printf(\"%%s=%%s\\n\", %q, %s)\n", f[0], f[0])
		fmt.Fprintf(&ldflags, "  - -X main.%s=%s\n", f[0], f[1])
	}
	return map[string]string{
		"cmd/fields/main.go": "package main\n\nimport \"fmt\"\n\n" + vars.String() + "\nfunc main() {\n" + prints.String() + "}\n",
		".ko.yaml":           "builds:\n- id: fields\n  main: ./cmd/fields\n  ldflags:\n" + ldflags.String(),
	}
}

// TestTemplateFieldsMatchKo: an ldflags template using every field gives
// the same -X values in the binaries kiln and the real ko build from the
// same git checkout, in each state that changes a field's value.
func TestTemplateFieldsMatchKo(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: not in -short")
	}
	d := newKoDiff(t)
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", d.dir, "-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_COMMITTER_DATE=2026-01-02T03:04:05+01:00", "GIT_AUTHOR_DATE=2026-01-02T03:04:05+01:00")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	testutil.WriteFiles(t, d.dir, fieldsModule())
	git("init", "-q", "-b", "main")
	git("add", ".")
	git("commit", "-q", "-m", "one")
	git("tag", "v1.2.0")
	git("checkout", "-q", "-b", "feature")
	testutil.WriteFiles(t, d.dir, map[string]string{"lib/more.go": "package lib\n\nvar More = 1\n"})
	git("add", ".")
	git("commit", "-q", "-m", "two")

	for _, step := range []struct {
		name   string
		change func()
		want   map[string]string // what some fields must be, beside equal
	}{
		{"clean, a branch, the tag one commit back", func() {},
			map[string]string{"branch": "feature", "tag": "v1.2.0", "treestate": "clean", "isclean": "true", "ldflags": "[]", "goarch": "amd64", "env": "same"}},
		{"an untracked file, detached HEAD", func() {
			git("checkout", "-q", "--detach")
			testutil.WriteFiles(t, d.dir, map[string]string{"notes.txt": "untracked"})
		}, map[string]string{"branch": "HEAD", "treestate": "dirty", "isdirty": "true"}},
		{"no tag, a tracked file changed", func() {
			git("tag", "-d", "v1.2.0")
			testutil.WriteFiles(t, d.dir, map[string]string{"lib/more.go": "package lib\n\nvar More = 2\n"})
		}, map[string]string{"tag": "v0.0.0", "treestate": "dirty"}},
	} {
		t.Run(step.name, func(t *testing.T) {
			step.change()
			ko, kiln := buildBoth(t, d, "KILN_TEMPLATE_VALUE=same")
			if !maps.Equal(ko, kiln) {
				t.Errorf("-X values differ:\nko   %v\nkiln %v", ko, kiln)
			}
			for k, v := range step.want {
				if ko[k] != v {
					t.Errorf("ko's %s = %q, want %q: the fixture is not what the test means", k, ko[k], v)
				}
			}
			if ko["date"] != time.Unix(1700000000, 0).Format(time.RFC3339) || ko["commitdate"] != "2026-01-02T02:04:05Z" {
				t.Errorf("ko's date %q, commit date %q", ko["date"], ko["commitdate"])
			}
		})
	}

	// Without SOURCE_DATE_EPOCH both take the time of the build: equal
	// but for the seconds between the two builds, each within its own.
	t.Run("no SOURCE_DATE_EPOCH: the build's time", func(t *testing.T) {
		before := time.Now().Add(-time.Second)
		ko, kiln := buildBoth(t, d, "KILN_TEMPLATE_VALUE=same", "SOURCE_DATE_EPOCH=")
		after := time.Now().Add(time.Second)
		for tool, vals := range map[string]map[string]string{"ko": ko, "kiln": kiln} {
			date, err := time.Parse(time.RFC3339, vals["date"])
			ts, _ := strconv.ParseInt(vals["timestamp"], 10, 64)
			if err != nil || date.Before(before) || date.After(after) || date.Unix() != ts {
				t.Errorf("%s: Date %q, Timestamp %q, want the build's time", tool, vals["date"], vals["timestamp"])
			}
			delete(vals, "date")
			delete(vals, "timestamp")
		}
		if !maps.Equal(ko, kiln) {
			t.Errorf("-X values differ:\nko   %v\nkiln %v", ko, kiln)
		}
	})
}

// buildBoth builds ./cmd/fields for linux/amd64 with ko and with kiln,
// with extra environment entries, and returns what each binary prints.
func buildBoth(t *testing.T, d *koDiff, extra ...string) (ko, kiln map[string]string) {
	t.Helper()
	args := []string{"build", "--platform", "linux/amd64", "./cmd/fields"}
	cmd := exec.Command(d.ko, args...)
	cmd.Dir, cmd.Env = d.dir, append(d.env(d.koRepo), extra...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ko build: %v\n%s", err, stderr.String())
	}
	var kout, kerr bytes.Buffer
	if code := cli.Run(context.Background(), cli.Invocation{Args: args, Env: append(d.env(d.kilnRepo), extra...), Dir: d.dir, Stdout: &kout, Stderr: &kerr}); code != 0 {
		t.Fatalf("kiln build: exit %d\n%s", code, kerr.String())
	}
	return printedFields(t, stdout.String()), printedFields(t, kout.String())
}

// printedFields runs the binary of the image ref names and reads back the
// name=value lines it prints.
func printedFields(t *testing.T, ref string) map[string]string {
	t.Helper()
	r, err := name.ParseReference(strings.TrimSpace(ref))
	if err != nil {
		t.Fatalf("%q: %v", ref, err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	_, files := testutil.Files(t, img, "ko-app/fields")
	bin := filepath.Join(t.TempDir(), "fields")
	if err := os.WriteFile(bin, files["ko-app/fields"], 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatalf("running the binary of %s: %v", ref, err)
	}
	vals := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		vals[k] = v
	}
	if len(vals) != len(everyField) {
		t.Fatalf("%s printed %d values, want %d: %v", ref, len(vals), len(everyField), vals)
	}
	return vals
}
