package server

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"maps"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/internal/buildrecord"
	"github.com/kilnbuild/kiln/internal/source"
)

// linkTo marks a file of a test tree as a symlink to the rest of it.
const linkTo = "symlink:"

// appTree is a module at app/ with the main package ./cmd/app, and files
// (relative to app/) added or replaced.
func appTree(files map[string]string) map[string]string {
	tree := map[string]string{
		"app/go.mod":          "module example.com/app\n\ngo 1.22\n",
		"app/cmd/app/main.go": "package main\n\nfunc main() {}\n",
	}
	for name, content := range files {
		tree["app/"+name] = content
	}
	return tree
}

// writeTree writes a test tree under dir, symlinks included.
func writeTree(t *testing.T, dir string, tree map[string]string) {
	t.Helper()
	for name, content := range tree {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, linkTo); ok {
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// tgzTree is a tar.gz of a test tree, symlinks included, in sorted order.
func tgzTree(t *testing.T, tree map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, name := range slices.Sorted(maps.Keys(tree)) {
		h := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(tree[name])), Typeflag: tar.TypeReg}
		if target, ok := strings.CutPrefix(tree[name], linkTo); ok {
			h = &tar.Header{Name: name, Mode: 0o777, Linkname: target, Typeflag: tar.TypeSymlink}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			io.WriteString(tw, tree[name])
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	gz.Close()
	return buf.Bytes()
}

// TestServiceRefusesPathsAtSubmit: a workspace or an uploaded archive
// whose .ko.yaml (read through a symlink, as kiln build reads it) names a
// file outside the tree or one that is not in it is a 400 at submission
// that says which flag, and nothing is queued: before, these were
// accepted and the build ended failed.
func TestServiceRefusesPathsAtSubmit(t *testing.T) {
	cases := []struct {
		name   string
		files  map[string]string // relative to app/
		want   string            // in the error message
		upload bool              // an upload only (a workspace refuses it at resolve already)
	}{
		{name: "-pgo outside the tree", files: map[string]string{".ko.yaml": "defaultFlags: [-pgo=../../../outside.pgo]\n"}, want: "outside the source tree"},
		{name: "-pgo absolute", files: map[string]string{".ko.yaml": "defaultFlags: [-pgo=/etc/hostname]\n"}, want: "outside the source tree"},
		{name: "-pgo as two arguments, missing", files: map[string]string{".ko.yaml": "defaultFlags: [-pgo, default.pgo]\n"}, want: "cmd/app/default.pgo is not in the source"},
		{name: "-overlay missing", files: map[string]string{".ko.yaml": "defaultFlags: [-overlay=overlay.json]\n"}, want: "cmd/app/overlay.json is not in the source"},
		{name: "-modfile in GOFLAGS, missing", files: map[string]string{".ko.yaml": "defaultEnv: [GOFLAGS=-modfile=../../alt.mod]\n"}, want: "alt.mod is not in the source"},
		{name: "-modfile in the package's entry, outside", files: map[string]string{".ko.yaml": "builds: [{main: ./cmd/app, flags: [-modfile=../../../x.mod]}]\n"}, want: "outside the source tree"},
		{name: "-pgo through a link to a file that is not there", files: map[string]string{".ko.yaml": "defaultFlags: [-pgo=default.pgo]\n", "cmd/app/default.pgo": linkTo + "../../profiles/none.pgo", "profiles/keep": "x"}, want: "is not in the source", upload: true},
		{name: ".ko.yaml a symlink to a config with -toolexec", files: map[string]string{".ko.yaml": linkTo + "conf/ko.yaml", "conf/ko.yaml": evilKoYAML}, want: "-toolexec is not allowed"},
		{name: ".ko.yaml a symlink to a symlink to a config with cgo", files: map[string]string{".ko.yaml": linkTo + "conf/ko", "conf/ko": linkTo + "real.yaml", "conf/real.yaml": "defaultEnv: [CGO_ENABLED=1]\n"}, want: "cgo is not allowed"},
		{name: ".ko.yaml a symlink to nothing", files: map[string]string{".ko.yaml": linkTo + "missing.yaml"}, want: "points to nothing", upload: true},
	}
	ws := t.TempDir()
	for i, c := range cases {
		writeTree(t, filepath.Join(ws, "case"+string(rune('a'+i))), appTree(c.files))
	}
	data := t.TempDir()
	url := serve(t, http.DefaultClient, "http", "127.0.0.1", "--data", data, "--workspace", ws)
	refused := func(t *testing.T, resp *http.Response, want string) {
		t.Helper()
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var body struct {
			Error struct{ Code, Message string }
		}
		json.Unmarshal(raw, &body)
		if resp.StatusCode != http.StatusBadRequest || body.Error.Code != "invalid_request" || !strings.Contains(body.Error.Message, want) {
			t.Errorf("%s: %s, want 400 invalid_request saying %q", resp.Status, raw, want)
		}
		if strings.Contains(body.Error.Message, ws) || strings.Contains(body.Error.Message, data) {
			t.Errorf("the message shows a server path: %s", body.Error.Message)
		}
	}
	for i, c := range cases {
		if !c.upload {
			t.Run("workspace "+c.name, func(t *testing.T) {
				req := `{"source": {"workspace": "case` + string(rune('a'+i)) + `/app"}, "packages": ["./cmd/app"]}`
				resp, err := http.Post(url+"/api/v1/builds", "application/json", strings.NewReader(req))
				if err != nil {
					t.Fatal(err)
				}
				refused(t, resp, c.want)
			})
		}
		t.Run("upload "+c.name, func(t *testing.T) {
			var body bytes.Buffer
			mw := multipart.NewWriter(&body)
			w, _ := mw.CreateFormField("request")
			io.WriteString(w, `{"source": {"subdir": "app"}, "packages": ["./cmd/app"]}`)
			w, _ = mw.CreateFormFile("archive", "src.tar.gz")
			w.Write(tgzTree(t, appTree(c.files)))
			mw.Close()
			resp, err := http.Post(url+"/api/v1/builds", mw.FormDataContentType(), &body)
			if err != nil {
				t.Fatal(err)
			}
			refused(t, resp, c.want)
		})
	}
	resp, err := http.Get(url + "/api/v1/builds")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct{ Builds []json.RawMessage }
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || len(page.Builds) != 0 {
		t.Errorf("builds after the refusals: %d (%v), want none", len(page.Builds), err)
	}
	if left, _ := os.ReadDir(filepath.Join(data, "uploads")); len(left) != 0 {
		t.Errorf("left in the upload directory: %v", left)
	}
}

// TestCheckConfigPathsAccepted: flags naming files that are in the tree,
// -pgo=auto and off, and a -pkgdir go build makes pass the submit check,
// for a workspace and an upload; so do git and module sources, which are
// checked when the build has fetched them.
func TestCheckConfigPathsAccepted(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
	}{
		{"-pgo present", map[string]string{".ko.yaml": "defaultFlags: [-pgo=default.pgo]\n", "cmd/app/default.pgo": "x"}},
		{"-pgo present through a link", map[string]string{".ko.yaml": "defaultFlags: [-pgo=default.pgo]\n", "cmd/app/default.pgo": linkTo + "../../profiles/app.pgo", "profiles/app.pgo": "x"}},
		{"-pgo auto and off", map[string]string{".ko.yaml": "defaultFlags: [-pgo=auto]\nbuilds: [{main: ./cmd/other, flags: [-pgo=off]}]\n"}},
		{"-pkgdir not made yet", map[string]string{".ko.yaml": "defaultFlags: [-pkgdir=../../pkg]\n"}},
		{"-overlay and -modfile present", map[string]string{".ko.yaml": "defaultFlags: [-overlay, ../../o.json]\ndefaultEnv: [GOFLAGS=-modfile=../../go.alt.mod]\n", "o.json": "{}", "go.alt.mod": "module example.com/app\n"}},
		{"a missing file in another package's entry", map[string]string{".ko.yaml": "builds: [{main: ./cmd/other, flags: [-pgo=none.pgo]}]\n"}},
		{".ko.yaml a symlink to a good config", map[string]string{".ko.yaml": linkTo + "conf/ko.yaml", "conf/ko.yaml": "defaultFlags: [-trimpath]\n"}},
	}
	b := &builder{registry: "127.0.0.1:5000", env: []string{"PATH=" + os.Getenv("PATH"), "HOME=/nonexistent"}}
	ctx := context.Background()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			writeTree(t, filepath.Join(root, "ws"), appTree(c.files))
			f := &source.Fetcher{Workspace: filepath.Join(root, "ws"), UploadDir: filepath.Join(root, "uploads")}
			id, _, err := f.SaveUpload(ctx, bytes.NewReader(tgzTree(t, appTree(c.files))))
			if err != nil {
				t.Fatal(err)
			}
			for _, src := range []buildrecord.Source{
				{Kind: source.KindWorkspace, Ref: "app"},
				{Kind: source.KindUpload, Ref: id, Subdir: "app"},
			} {
				cfg, err := f.Config(ctx, source.Resolved{Source: src})
				if err != nil || cfg == nil {
					t.Fatalf("%s: config %v, %v", src.Kind, cfg, err)
				}
				if err := b.CheckConfig([]byte(`{"packages": ["./cmd/app"]}`), *cfg); err != nil {
					t.Errorf("%s: refused: %v", src.Kind, err)
				}
			}
		})
	}
}
