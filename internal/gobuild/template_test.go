package gobuild

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kilnbuild/kiln/internal/vcs"
)

var (
	amd64 = v1.Platform{OS: "linux", Architecture: "amd64"}
	// a commit in a checkout with a tag, as vcs.Reader gives it
	checkout = vcs.Git{
		Commit: "0123456789abcdef0123456789abcdef01234567", ShortCommit: "0123456", Tag: "v1.2.3", Branch: "main",
		CommitDate: time.Date(2026, 1, 2, 4, 4, 5, 0, time.FixedZone("CET", 3600)), TreeDirty: true,
		RemoteURL: "https://git.example.com/org/repo.git", Root: "/src",
	}
)

// Each field a template can name gives ko's value.
func TestTemplateFields(t *testing.T) {
	local := time.Local
	time.Local = time.FixedZone("X", 2*3600) // ko formats Date in the local zone
	t.Cleanup(func() { time.Local = local })
	base := TemplateInput{Environ: []string{"VERSION=1.2", "HOME=/h"}, Platform: amd64, Git: checkout, Date: time.Unix(1700000000, 0).UTC()}
	with := func(edit func(*TemplateInput)) TemplateInput {
		in := base
		edit(&in)
		return in
	}
	for _, tc := range []struct {
		name, tmpl, want string
		in               TemplateInput
	}{
		{"Env from the caller", "{{.Env.VERSION}}", "1.2", base},
		{"Env LDFLAGS is defined as empty", "[{{.Env.LDFLAGS}}]", "[]", base},
		{"Env LDFLAGS set", "{{.Env.LDFLAGS}}", "-s", with(func(in *TemplateInput) { in.Environ = []string{"LDFLAGS=-s"} })},
		{"Env GOOS/GOARCH of the platform", "{{.Env.GOOS}}/{{.Env.GOARCH}}/{{.Env.CGO_ENABLED}}", "linux/amd64/0", base},
		{"Env the caller's GOARCH wins over the platform's", "{{.Env.GOARCH}}", "arm64", with(func(in *TemplateInput) { in.Environ = []string{"GOARCH=arm64"} })},
		{"Env the build's env wins over the caller's", "{{.Env.VERSION}}", "2", with(func(in *TemplateInput) { in.BuildEnv = []string{"VERSION=2"} })},
		{"Env GOARM of arm/v7", "{{.Env.GOARM}}", "7", with(func(in *TemplateInput) { in.Platform = v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"} })},
		{"Env GOARM of arm/v8 is 7", "{{.Env.GOARM}}", "7", with(func(in *TemplateInput) { in.Platform = v1.Platform{OS: "linux", Architecture: "arm", Variant: "v8"} })},
		{"Env GOAMD64", "{{.Env.GOAMD64}}", "v3", with(func(in *TemplateInput) { in.Platform.Variant = "v3" })},
		{"GoEnv from go env", "{{.GoEnv.GOPATH}}", "/go", with(func(in *TemplateInput) { in.GoEnv = map[string]string{"GOPATH": "/go", "GOOS": "darwin"} })},
		{"GoEnv overridden by Env", "{{.GoEnv.GOOS}}", "linux", with(func(in *TemplateInput) { in.GoEnv = map[string]string{"GOPATH": "/go", "GOOS": "darwin"} })},
		{"Date in RFC 3339, local zone", "{{.Date}}", "2023-11-15T00:13:20+02:00", base},
		{"Timestamp", "{{.Timestamp}}", "1700000000", base},
		{"Git.Branch", "{{.Git.Branch}}", "main", base},
		{"Git.Tag", "{{.Git.Tag}}", "v1.2.3", base},
		{"Git.Tag without a tag", "{{.Git.Tag}}", "v0.0.0", with(func(in *TemplateInput) { in.Git.Tag = "" })},
		{"Git.ShortCommit", "{{.Git.ShortCommit}}", "0123456", base},
		{"Git.FullCommit", "{{.Git.FullCommit}}", checkout.Commit, base},
		{"Git.CommitDate in UTC", "{{.Git.CommitDate}}", "2026-01-02T03:04:05Z", base},
		{"Git.CommitTimestamp", "{{.Git.CommitTimestamp}}", "1767323045", base},
		{"Git.TreeState", "{{.Git.TreeState}}", "dirty", base},
		{"Git.IsDirty", "{{.Git.IsDirty}} {{.Git.IsClean}}", "true false", base},
		{"Git.IsClean", "{{.Git.IsDirty}} {{.Git.IsClean}} {{.Git.TreeState}}", "false true clean", with(func(in *TemplateInput) { in.Git.TreeDirty = false })},
		{"Git kiln's Dirty: tracked files only", "{{.Git.Dirty}}", "false", base},
		{"Git kiln's Commit, RemoteURL, Root", "{{.Git.Commit}} {{.Git.RemoteURL}} {{.Git.Root}}", checkout.Commit + " https://git.example.com/org/repo.git /src", base},
		{"outside a checkout", "{{.Git.Tag}}|{{.Git.Branch}}|{{.Git.CommitDate}}|{{.Git.CommitTimestamp}}|{{.Git.TreeState}}",
			"||0001-01-01T00:00:00Z|-62135596800|clean", with(func(in *TemplateInput) { in.Git = vcs.Git{} })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := NewTemplateData(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Expand([]string{tc.tmpl}, data)
			if err != nil {
				t.Fatal(err)
			}
			if got[0] != tc.want {
				t.Errorf("%s = %q, want %q", tc.tmpl, got[0], tc.want)
			}
		})
	}
}

func TestTemplateBadInput(t *testing.T) {
	good := TemplateInput{Environ: []string{"A=1"}, Platform: amd64, GoEnv: map[string]string{"GOOS": "linux"}}
	for _, tc := range []struct {
		name string
		in   TemplateInput
		tmpl string
	}{
		{"missing Env key", good, "{{.Env.MISSING}}"},
		{"missing GoEnv key", good, "{{.GoEnv.MISSING}}"},
		{"unknown Git field", good, "{{.Git.Nope}}"},
		{"unknown field", good, "{{.Nope}}"},
		{"syntax error", good, "{{.Env.A"},
		{"caller env entry without =", TemplateInput{Environ: []string{"NOEQUALS"}}, "{{.Env.A}}"},
		{"build env entry without =", TemplateInput{BuildEnv: []string{"NOEQUALS"}}, "{{.Env.A}}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := NewTemplateData(tc.in)
			if err == nil {
				_, err = Expand([]string{tc.tmpl}, data)
			}
			if !errors.Is(err, ErrBadFlag) || strings.Contains(err.Error(), "\n") {
				t.Errorf("err = %v, want one line wrapping ErrBadFlag", err)
			}
		})
	}
}

func TestExpandLeavesPlainFlags(t *testing.T) {
	data, err := NewTemplateData(TemplateInput{Environ: []string{"V=1"}, Platform: amd64})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Expand([]string{"-s", "-X main.v={{.Env.V}}"}, data)
	if want := []string{"-s", "-X main.v=1"}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Expand = %q, %v; want %q", got, err, want)
	}
}

func TestBuildDate(t *testing.T) {
	start := time.Unix(42, 0)
	for _, tc := range []struct {
		env     []string
		want    time.Time
		wantErr bool
	}{
		{nil, start, false},
		{[]string{"SOURCE_DATE_EPOCH="}, start, false},
		{[]string{"SOURCE_DATE_EPOCH=1700000000"}, time.Unix(1700000000, 0), false},
		{[]string{"SOURCE_DATE_EPOCH=0"}, time.Unix(0, 0), false},
		{[]string{"SOURCE_DATE_EPOCH=yesterday"}, time.Time{}, true},
	} {
		got, err := BuildDate(tc.env, start)
		if (err != nil) != tc.wantErr || !got.Equal(tc.want) {
			t.Errorf("BuildDate(%q) = %v, %v; want %v (error %v)", tc.env, got, err, tc.want, tc.wantErr)
		}
	}
}

type goEnvRunner struct {
	out  string
	err  error
	env  []string
	args []string
}

func (r *goEnvRunner) Run(_ context.Context, _ string, env []string, _ string, args ...string) ([]byte, error) {
	r.env, r.args = env, args
	return []byte(r.out), r.err
}

// GoEnv runs go env -json with the caller's environment untouched.
func TestBuilderGoEnv(t *testing.T) {
	r := &goEnvRunner{out: `{"GOPATH": "/go", "GOFLAGS": "-mod=mod"}`}
	b := &Builder{Env: []string{"GOFLAGS=-mod=mod", "CGO_ENABLED=1"}, Runner: r}
	env, err := b.GoEnv(context.Background(), "/src")
	if err != nil || env["GOPATH"] != "/go" || env["GOFLAGS"] != "-mod=mod" {
		t.Fatalf("GoEnv = %v, %v", env, err)
	}
	if !reflect.DeepEqual(r.env, b.Env) || !reflect.DeepEqual(r.args, []string{"env", "-json"}) {
		t.Errorf("ran go %q with %q", r.args, r.env)
	}
	for _, bad := range []*goEnvRunner{{err: &CommandError{Err: errors.New("exit status 1"), Output: "go: bad"}}, {out: "GOPATH=/go"}} {
		if _, err := (&Builder{Runner: bad}).GoEnv(context.Background(), "/src"); err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("GoEnv with %+v: err = %v, want one line", bad, err)
		}
	}
}
