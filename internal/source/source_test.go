package source

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/internal/testutil"
)

type fixture struct {
	f       *Fetcher
	git     *gitRepo
	gitURL  string
	uploads string
}

// modcache is the GOMODCACHE of the fixture's go command.
func (fx *fixture) modcache() string {
	for _, kv := range fx.f.GoEnv {
		if v, ok := strings.CutPrefix(kv, "GOMODCACHE="); ok {
			return v
		}
	}
	panic("no GOMODCACHE")
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	goBin := testutil.RequireTool(t, "go")
	root := t.TempDir()
	ws := filepath.Join(root, "ws")
	testutil.WriteFiles(t, root, map[string]string{
		"outside/secret":   "secret",
		"ws/app/go.mod":    "module example.com/app\n\ngo 1.22\n",
		"ws/app/main.go":   "package main\n\nfunc main() {}\n",
		"ws/app/.git/HEAD": "ref: refs/heads/main\n",
		"ws/leaky/go.mod":  "module example.com/leaky\n",
		"ws/sideways/a.go": "package a\n",
	})
	for link, target := range map[string]string{
		"ws/app/link":         "main.go",
		"ws/out":              "../outside",
		"ws/leaky/secret":     "../../outside/secret",
		"ws/sideways/main.go": "../app/main.go",
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	g := newGitRepo(t)
	mods := serveModules(t, []testModule{
		{"example.com/good", "v1.0.0", map[string]string{"go.mod": "module example.com/good\n\ngo 1.22\n", "cmd/good/main.go": "package main\n\nfunc main() {}\n"}},
		{"example.com/evil", "v1.0.0", map[string]string{"go.mod": "module example.com/evil\n\ngo 1.22\n", "main.go": "package main\n\nfunc main() {}\n"}},
	}, map[string]bool{"example.com/evil@v1.0.0": true})
	fx := &fixture{git: g, uploads: filepath.Join(root, "uploads")}
	fx.gitURL = serveGit(t, g.st).URL + "/repo.git"
	fx.f = &Fetcher{
		Workspace: ws,
		UploadDir: fx.uploads,
		Limits:    testLimits,
		Go:        goBin,
		GoEnv:     goEnv(t, mods.proxy.URL, mods.vkey+" "+mods.sumdb.URL),
		GitAllow:  []string{"127.0.0.1"},
	}
	return fx
}

// TestRefusesBadInput is the one table of bad input: each case is refused
// with ErrInvalid, a one-line message that names no server path, and
// leaves nothing on disk.
func TestRefusesBadInput(t *testing.T) {
	fx := newFixture(t)
	ctx := context.Background()
	type tc struct {
		name   string
		spec   Spec
		upload []byte
		f      *Fetcher
		// fetch: Resolve with fx.f, then Fetch with f, which refuses.
		fetch bool
	}
	with := func(change func(f *Fetcher)) *Fetcher {
		f := *fx.f
		change(&f)
		return &f
	}
	tiny := with(func(f *Fetcher) { f.Limits.MaxSource = 16 })
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, strings.Replace(fx.gitURL, "127.0.0.1", "localhost", 1)+strings.TrimPrefix(r.URL.Path, "/repo.git")+"?"+r.URL.RawQuery, http.StatusFound)
	}))
	t.Cleanup(redirect.Close)
	cases := []tc{
		{name: "no kind", spec: Spec{}},
		{name: "two kinds", spec: Spec{Workspace: "app", Module: "example.com/good@v1.0.0"}},
		{name: "workspace outside", spec: Spec{Workspace: "../outside"}},
		{name: "workspace absolute", spec: Spec{Workspace: "/etc"}},
		{name: "workspace unclean", spec: Spec{Workspace: "app/../app"}},
		{name: "workspace missing", spec: Spec{Workspace: "nothere"}},
		{name: "workspace symlink out", spec: Spec{Workspace: "out"}},
		{name: "workspace with a symlink inside that points out", spec: Spec{Workspace: "leaky"}},
		{name: "workspace with a symlink out of its tree", spec: Spec{Workspace: "sideways"}},
		{name: "workspace off", spec: Spec{Workspace: "app"}, f: &Fetcher{}},
		{name: "workspace with subdir", spec: Spec{Workspace: "app", Subdir: "x"}},
		{name: "upload ID not hex", spec: Spec{Upload: "../../etc/passwd"}},
		{name: "upload ID unknown", spec: Spec{Upload: strings.Repeat("ab", 32)}},
		{name: "upload subdir with ..", spec: Spec{Upload: strings.Repeat("ab", 32), Subdir: "../x"}},
		{name: "invalid module path", spec: Spec{Module: "Example..com/%%@v1.0.0"}},
		{name: "module without version", spec: Spec{Module: "example.com/good"}},
		{name: "module with a query for version", spec: Spec{Module: "example.com/good@latest"}},
		{name: "module not found", spec: Spec{Module: "example.com/none@v1.0.0"}},
		{name: "module version not found", spec: Spec{Module: "example.com/good@v1.2.3"}},
		{name: "module hash does not match the checksum database", spec: Spec{Module: "example.com/evil@v1.0.0"}},
		{name: "git unknown ref", spec: Spec{Git: &Git{URL: fx.gitURL, Ref: "no-such-branch"}}},
		{name: "git short hash", spec: Spec{Git: &Git{URL: fx.gitURL, Ref: fx.git.first.String()[:7]}}},
		{name: "git unknown commit", spec: Spec{Git: &Git{URL: fx.gitURL, Ref: strings.Repeat("0a", 20)}}},
		{name: "git repository not found", spec: Spec{Git: &Git{URL: strings.TrimSuffix(fx.gitURL, "repo.git") + "other.git"}}},
		{name: "git ssh URL", spec: Spec{Git: &Git{URL: "ssh://git@example.com/repo.git"}}},
		{name: "git file URL", spec: Spec{Git: &Git{URL: "file:///etc"}}},
		{name: "git scp-like URL", spec: Spec{Git: &Git{URL: "git@example.com:repo.git"}}},
		{name: "git URL with credentials", spec: Spec{Git: &Git{URL: "https://user:pw@127.0.0.1/repo.git"}}},
		{name: "git ext:: URL", spec: Spec{Git: &Git{URL: "ext::sh -c evil"}}},
		{name: "git git:// URL", spec: Spec{Git: &Git{URL: "git://127.0.0.1/repo.git"}}},
		{name: "git local path", spec: Spec{Git: &Git{URL: "/srv/repos/app.git"}}},
		{name: "git relative path", spec: Spec{Git: &Git{URL: "../app.git"}}},
		{name: "git host not allowed", spec: Spec{Git: &Git{URL: "https://example.com/repo.git"}}},
		{name: "git host allowed on another port only", spec: Spec{Git: &Git{URL: fx.gitURL}}, f: with(func(f *Fetcher) { f.GitAllow = []string{"127.0.0.1:1"} })},
		{name: "git sources off without an allow-list", spec: Spec{Git: &Git{URL: fx.gitURL}}, f: with(func(f *Fetcher) { f.GitAllow = nil })},
		{name: "git redirect to a host not allowed", spec: Spec{Git: &Git{URL: redirect.URL + "/repo.git"}}},
		{name: "git checkout larger than MaxSource", spec: Spec{Git: &Git{URL: fx.gitURL}}, f: tiny, fetch: true},
		{name: "module larger than MaxSource", spec: Spec{Module: "example.com/good@v1.0.0"}, f: tiny, fetch: true},
		{name: "module zip larger than MaxSource", spec: Spec{Module: "example.com/good@v1.0.0"}, f: tiny},
		{name: "workspace larger than MaxSource", spec: Spec{Workspace: "app"}, f: tiny, fetch: true},
	}
	for name, data := range badArchives(t) {
		cases = append(cases, tc{name: name, upload: data})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := fx.f
			if c.f != nil {
				f = c.f
			}
			var err error
			dir := t.TempDir()
			switch {
			case c.upload != nil:
				_, _, err = f.SaveUpload(ctx, bytes.NewReader(c.upload))
			case c.fetch:
				r, rerr := fx.f.Resolve(ctx, c.spec)
				if rerr != nil {
					t.Fatal(rerr)
				}
				_, err = f.Fetch(ctx, r, dir)
			default:
				_, err = f.Resolve(ctx, c.spec)
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Errorf("left in the build directory: %v", left)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want an error wrapping ErrInvalid", err)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") || strings.Contains(msg, os.TempDir()) {
				t.Errorf("message is not one line without server paths: %q", msg)
			}
			if left, _ := os.ReadDir(fx.uploads); len(left) != 0 {
				t.Errorf("left in the upload dir: %v", left)
			}
			if c.spec.Module != "" && strings.Contains(c.spec.Module, "@v") && c.f != tiny { // a module refused for its size is downloaded first
				if _, err := os.Stat(filepath.Join(fx.modcache(), filepath.FromSlash(c.spec.Module))); err == nil {
					t.Errorf("the refused module %s was extracted into the module cache", c.spec.Module)
				}
			}
			t.Log(msg)
		})
	}
}

// TestFetchEachKind resolves and fetches every kind of source.
func TestFetchEachKind(t *testing.T) {
	fx := newFixture(t)
	ctx := context.Background()
	id, _, err := fx.f.SaveUpload(ctx, bytes.NewReader(goodArchive(t)))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		spec     Spec
		revision string
		want     []string // files in the module root
		absent   []string
	}{
		{name: "workspace", spec: Spec{Workspace: "app"}, want: []string{"go.mod", "main.go", "link"}, absent: []string{".git"}},
		{name: "upload", spec: Spec{Upload: id, Subdir: "cmd/app"}, want: []string{"main.go", "kodata/link", "../../copy.mod"}},
		{name: "git HEAD", spec: Spec{Git: &Git{URL: fx.gitURL}}, revision: fx.git.second.String(), want: []string{"go.mod", "app/version.go"}, absent: []string{".git"}},
		{name: "git branch", spec: Spec{Git: &Git{URL: fx.gitURL, Ref: "master"}}, revision: fx.git.second.String(), want: []string{"app/version.go"}},
		{name: "git annotated tag", spec: Spec{Git: &Git{URL: fx.gitURL, Ref: "v1.0.0"}}, revision: fx.git.second.String(), want: []string{"app/version.go"}},
		{name: "git lightweight tag", spec: Spec{Git: &Git{URL: fx.gitURL, Ref: "refs/tags/light"}}, revision: fx.git.first.String(), want: []string{"app/main.go"}, absent: []string{"app/version.go"}},
		{name: "git commit below the tips", spec: Spec{Git: &Git{URL: fx.gitURL, Ref: fx.git.first.String()}, Subdir: "app"}, revision: fx.git.first.String(), want: []string{"main.go"}, absent: []string{"version.go"}},
		{name: "module", spec: Spec{Module: "example.com/good@v1.0.0"}, revision: "v1.0.0", want: []string{"go.mod", "cmd/good/main.go"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := fx.f.Resolve(ctx, c.spec)
			if err != nil {
				t.Fatal(err)
			}
			if r.Revision != c.revision {
				t.Errorf("revision %q, want %q", r.Revision, c.revision)
			}
			if r.Subdir != c.spec.Subdir {
				t.Errorf("subdir %q, want %q", r.Subdir, c.spec.Subdir)
			}
			dir := t.TempDir()
			root, err := fx.f.Fetch(ctx, r, dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range c.want {
				if _, err := os.Stat(filepath.Join(root, w)); err != nil {
					t.Errorf("missing %s: %v", w, err)
				}
			}
			for _, a := range c.absent {
				if _, err := os.Lstat(filepath.Join(root, a)); err == nil {
					t.Errorf("%s should not be there", a)
				}
			}
			// The build owns its copy: everything in it is writable.
			filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
				if fi, _ := os.Lstat(p); err == nil && fi.Mode().Type() != os.ModeSymlink && fi.Mode().Perm()&0o200 == 0 {
					t.Errorf("%s is read-only", p)
				}
				return nil
			})
		})
	}
	if r, _ := fx.f.Resolve(ctx, Spec{Upload: id}); r.Hash != "sha256:"+id {
		t.Errorf("upload hash %q", r.Hash)
	}
	if r, _ := fx.f.Resolve(ctx, Spec{Module: "example.com/good@v1.0.0"}); !strings.HasPrefix(r.Hash, "h1:") {
		t.Errorf("module hash %q", r.Hash)
	}
	if err := fx.f.DeleteUpload(id); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.f.Resolve(ctx, Spec{Upload: id}); !errors.Is(err, ErrInvalid) {
		t.Errorf("resolving a deleted upload: %v", err)
	}
}

// TestFetchRefusesWhatChangedOrHides covers refusals only Fetch can see:
// a git tree with a symlink out, a workspace that turned bad after
// Resolve, and a stored upload whose bytes changed.
func TestFetchRefusesWhatChangedOrHides(t *testing.T) {
	fx := newFixture(t)
	ctx := context.Background()

	r, err := fx.f.Resolve(ctx, Spec{Git: &Git{URL: fx.gitURL, Ref: "evil"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fx.f.Fetch(ctx, r, t.TempDir()); !errors.Is(err, ErrInvalid) {
		t.Errorf("git tree with a symlink out: got %v, want ErrInvalid", err)
	}

	r, err = fx.f.Resolve(ctx, Spec{Workspace: "app"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../outside/secret", filepath.Join(fx.f.Workspace, "app", "late")); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.f.Fetch(ctx, r, t.TempDir()); !errors.Is(err, ErrInvalid) {
		t.Errorf("workspace that gained a symlink out: got %v, want ErrInvalid", err)
	}

	id, _, err := fx.f.SaveUpload(ctx, bytes.NewReader(goodArchive(t)))
	if err != nil {
		t.Fatal(err)
	}
	r, err = fx.f.Resolve(ctx, Spec{Upload: id})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fx.f.uploadPath(id), tgz(t, ent{name: "go.mod", body: "module x\n"}), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.f.Fetch(ctx, r, t.TempDir()); err == nil || !strings.Contains(err.Error(), "changed on disk") {
		t.Errorf("upload changed on disk: got %v", err)
	}
}

// TestModuleThroughMachineProxy downloads one real public module through
// the machine's GOPROXY and checksum database, into a fresh module cache.
func TestModuleThroughMachineProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("uses the network: skipped with -short")
	}
	goBin := testutil.RequireTool(t, "go")
	proxy, err := exec.Command(goBin, "env", "GOPROXY").Output()
	if err != nil {
		t.Fatal(err)
	}
	sumdb, err := exec.Command(goBin, "env", "GOSUMDB").Output()
	if err != nil {
		t.Fatal(err)
	}
	f := &Fetcher{Go: goBin, GoEnv: goEnv(t, strings.TrimSpace(string(proxy)), strings.TrimSpace(string(sumdb)))}
	const mod, want = "golang.org/x/sync@v0.25.0", "h1:"
	ctx := context.Background()
	r, err := f.Resolve(ctx, Spec{Module: mod})
	if err != nil && !errors.Is(err, ErrInvalid) && os.Getenv("CI") != "true" {
		t.Skipf("the machine's GOPROXY is unreachable: skipping (this fails under CI=true): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	sum, err := os.ReadFile("../../go.sum")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(sum), "golang.org/x/sync v0.25.0 "+r.Hash+"\n") {
		t.Errorf("hash %s is not go.sum's for %s", r.Hash, mod)
	}
	root, err := f.Fetch(ctx, r, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "errgroup", "errgroup.go")); err != nil {
		t.Error(err)
	}
	_ = want
}
