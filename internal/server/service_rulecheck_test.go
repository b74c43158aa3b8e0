package server

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
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

	"github.com/kilnbuild/kiln/internal/testutil"
)

const evilKoYAML = "defaultFlags: [-toolexec=/bin/sh]\n"

// TestServiceRefusesToolexecAtSubmit: a workspace or an uploaded archive
// whose .ko.yaml breaks kiln build's rule is a 400 that says why, and
// nothing is queued or kept (git and module sources are checked when the
// build has fetched them).
func TestServiceRefusesToolexecAtSubmit(t *testing.T) {
	ws := t.TempDir()
	testutil.WriteFiles(t, ws, map[string]string{
		"app/go.mod":          "module example.com/app\n\ngo 1.22\n",
		"app/cmd/app/main.go": "package main\n\nfunc main() {}\n",
		"app/.ko.yaml":        evilKoYAML,
	})
	data := t.TempDir()
	url := serve(t, http.DefaultClient, "http", "127.0.0.1", "--data", data, "--workspace", ws)

	check := func(t *testing.T, resp *http.Response) {
		t.Helper()
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var body struct {
			Error struct{ Code, Message string }
		}
		json.Unmarshal(raw, &body)
		if resp.StatusCode != http.StatusBadRequest || body.Error.Code != "invalid_request" || !strings.Contains(body.Error.Message, "-toolexec is not allowed") {
			t.Errorf("%s: %s, want 400 invalid_request naming -toolexec", resp.Status, raw)
		}
		if strings.Contains(body.Error.Message, ws) || strings.Contains(body.Error.Message, data) {
			t.Errorf("the message shows a server path: %s", body.Error.Message)
		}
	}
	t.Run("workspace", func(t *testing.T) {
		resp, err := http.Post(url+"/api/v1/builds", "application/json", strings.NewReader(`{"source": {"workspace": "app"}, "packages": ["./cmd/app"]}`))
		if err != nil {
			t.Fatal(err)
		}
		check(t, resp)
	})
	t.Run("upload", func(t *testing.T) {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		w, _ := mw.CreateFormField("request")
		io.WriteString(w, `{"source": {"subdir": "app"}, "packages": ["./cmd/app"]}`)
		w, _ = mw.CreateFormFile("archive", "src.tar.gz")
		w.Write(tgzOf(t, map[string]string{"app/go.mod": "module example.com/app\n", "app/.ko.yaml": evilKoYAML}))
		mw.Close()
		resp, err := http.Post(url+"/api/v1/builds", mw.FormDataContentType(), &body)
		if err != nil {
			t.Fatal(err)
		}
		check(t, resp)
		if left, _ := os.ReadDir(filepath.Join(data, "uploads")); len(left) != 0 {
			t.Errorf("left in the upload directory: %v", left)
		}
	})
	resp, err := http.Get(url + "/api/v1/builds")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct{ Builds []json.RawMessage }
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || len(page.Builds) != 0 {
		t.Errorf("builds after the refusals: %d (%v), want none", len(page.Builds), err)
	}
}

// tgzOf is a tar.gz of files (name → content), in sorted order.
func tgzOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(files[name])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, files[name])
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	gz.Close()
	return buf.Bytes()
}
