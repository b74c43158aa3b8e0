package source

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/internal/buildrecord"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// TestConfig reads the config that applies at a source's module root,
// where the tree is known at submission.
func TestConfig(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	// Random text: it must not look like a gzip bomb in an archive.
	noise := make([]byte, MaxConfig)
	rand.Read(noise)
	big := "# " + base64.StdEncoding.EncodeToString(noise)
	testutil.WriteFiles(t, root, map[string]string{
		"ws/plain/.ko.yaml":    "defaultFlags: [-trimpath]\n",
		"ws/plain/go.mod":      "module x\n",
		"ws/yml/.ko.yml":       "defaultFlags: [-a]\n",
		"ws/both/.ko.yaml":     "yaml\n",
		"ws/both/.ko.yml":      "yml\n",
		"ws/none/go.mod":       "module x\n",
		"ws/linked/real":       "defaultFlags: [-toolexec=x]\n",
		"ws/big/.ko.yaml":      big,
		"ws/cfgdir/.ko.yaml/a": "x",
	})
	if err := os.Symlink("real", filepath.Join(root, "ws/linked/.ko.yaml")); err != nil {
		t.Fatal(err)
	}
	f := &Fetcher{Workspace: filepath.Join(root, "ws"), UploadDir: filepath.Join(root, "uploads")} // default limits: the large config fits
	upload := func(ents ...ent) string {
		id, _, err := f.SaveUpload(ctx, bytes.NewReader(tgz(t, ents...)))
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	withConfig := upload(ent{name: "go.mod", body: "module x\n"}, ent{name: "svc/.ko.yml", body: "yml\n"}, ent{name: "svc/.ko.yaml", body: "sub\n"}, ent{name: ".ko.yaml", body: "top\n"})
	linked := upload(ent{name: "real", body: "x\n"}, ent{name: ".ko.yaml", typ: tar.TypeSymlink, link: "real"})
	hard := upload(ent{name: "real", body: "x\n"}, ent{name: ".ko.yaml", typ: tar.TypeLink, link: "real"})
	bigUp := upload(ent{name: ".ko.yaml", body: big})
	chain := upload(ent{name: "svc/.ko.yaml", typ: tar.TypeSymlink, link: "../conf/ko"}, ent{name: "conf/ko", typ: tar.TypeSymlink, link: "shared.yaml"}, ent{name: "conf/shared.yaml", body: "shared\n"})
	dangling := upload(ent{name: ".ko.yaml", typ: tar.TypeSymlink, link: "missing.yaml"})
	toDir := upload(ent{name: "d/x", body: "x"}, ent{name: ".ko.yaml", typ: tar.TypeSymlink, link: "d"})

	cases := []struct {
		name string
		src  buildrecord.Source
		want string // "" for none
		bad  bool   // refused with ErrInvalid
	}{
		{name: "workspace .ko.yaml", src: buildrecord.Source{Kind: KindWorkspace, Ref: "plain"}, want: ".ko.yaml:defaultFlags: [-trimpath]\n"},
		{name: "workspace .ko.yml", src: buildrecord.Source{Kind: KindWorkspace, Ref: "yml"}, want: ".ko.yml:defaultFlags: [-a]\n"},
		{name: "workspace: .ko.yaml wins", src: buildrecord.Source{Kind: KindWorkspace, Ref: "both"}, want: ".ko.yaml:yaml\n"},
		{name: "workspace without a config", src: buildrecord.Source{Kind: KindWorkspace, Ref: "none"}},
		{name: "workspace config a symlink: read through it, as kiln build does", src: buildrecord.Source{Kind: KindWorkspace, Ref: "linked"}, want: ".ko.yaml:defaultFlags: [-toolexec=x]\n"},
		{name: "workspace config too large", src: buildrecord.Source{Kind: KindWorkspace, Ref: "big"}, bad: true},
		{name: "workspace config a directory", src: buildrecord.Source{Kind: KindWorkspace, Ref: "cfgdir"}, bad: true},
		{name: "workspace outside", src: buildrecord.Source{Kind: KindWorkspace, Ref: "../x"}, bad: true},
		{name: "upload root", src: buildrecord.Source{Kind: KindUpload, Ref: withConfig}, want: ".ko.yaml:top\n"},
		{name: "upload subdir: .ko.yaml wins over an earlier .ko.yml", src: buildrecord.Source{Kind: KindUpload, Ref: withConfig, Subdir: "svc"}, want: ".ko.yaml:sub\n"},
		{name: "upload subdir without a config", src: buildrecord.Source{Kind: KindUpload, Ref: withConfig, Subdir: "other"}},
		{name: "upload config a symlink", src: buildrecord.Source{Kind: KindUpload, Ref: linked}, want: ".ko.yaml:x\n"},
		{name: "upload config a hard link", src: buildrecord.Source{Kind: KindUpload, Ref: hard}, want: ".ko.yaml:x\n"},
		{name: "upload config a symlink to a symlink out of the subdir", src: buildrecord.Source{Kind: KindUpload, Ref: chain, Subdir: "svc"}, want: ".ko.yaml:shared\n"},
		{name: "upload config a symlink to nothing", src: buildrecord.Source{Kind: KindUpload, Ref: dangling}, bad: true},
		{name: "upload config a symlink to a directory", src: buildrecord.Source{Kind: KindUpload, Ref: toDir}, bad: true},
		{name: "upload config too large", src: buildrecord.Source{Kind: KindUpload, Ref: bigUp}, bad: true},
		{name: "upload unknown", src: buildrecord.Source{Kind: KindUpload, Ref: strings.Repeat("ab", 32)}, bad: true},
		{name: "git: fetched when the build runs", src: buildrecord.Source{Kind: KindGit, Ref: "https://example.invalid/r.git"}},
		{name: "module: fetched when the build runs", src: buildrecord.Source{Kind: KindModule, Ref: "example.com/m@v1.0.0"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := f.Config(ctx, Resolved{Source: c.src})
			if c.bad {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("got %v, want ErrInvalid", err)
				}
				if msg := err.Error(); strings.Contains(msg, root) || strings.Contains(msg, "\n") {
					t.Errorf("message is not one line without server paths: %q", msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			s := ""
			if got != nil {
				s = got.Name + ":" + string(got.Data)
			}
			if s != c.want {
				t.Errorf("got %q, want %q", s, c.want)
			}
		})
	}
}

// SaveUpload tells a new archive from one stored already, so that a
// refused submission removes only what it added.
func TestSaveUploadCreated(t *testing.T) {
	f := &Fetcher{UploadDir: t.TempDir(), Limits: testLimits}
	for i, want := range []bool{true, false} {
		id, created, err := f.SaveUpload(context.Background(), bytes.NewReader(goodArchive(t)))
		if err != nil || created != want {
			t.Fatalf("save %d: created %v, err %v; want created %v", i+1, created, err, want)
		}
		if left, _ := filepath.Glob(filepath.Join(f.UploadDir, ".upload-*")); len(left) != 0 {
			t.Errorf("staging files left: %v", left)
		}
		if _, err := os.Stat(f.uploadPath(id)); err != nil {
			t.Fatal(err)
		}
	}
}
