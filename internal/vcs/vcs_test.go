package vcs

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func git(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com",
		"GIT_AUTHOR_DATE=2026-01-02T03:04:05Z", "GIT_COMMITTER_DATE=2026-01-02T03:04:05Z")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

func TestRead(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is required")
	}
	dir := t.TempDir()
	ctx := context.Background()
	if g, err := Read(ctx, dir); err != nil || g.Commit != "" {
		t.Fatalf("outside a checkout: %+v, %v", g, err)
	}
	git(t, dir, "init", "-q", "-b", "main")
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, dir, "add", "a.txt")
	git(t, dir, "commit", "-q", "-m", "first")
	git(t, dir, "tag", "v1.2.3")
	git(t, dir, "remote", "add", "origin", "https://user:secret@git.example.com/org/repo.git")

	g, err := Read(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Commit) != 40 || g.ShortCommit != g.Commit[:7] {
		t.Errorf("commit = %q short = %q", g.Commit, g.ShortCommit)
	}
	if g.Tag != "v1.2.3" || g.Branch != "main" || g.Dirty || g.TreeState() != "clean" {
		t.Errorf("got %+v", g)
	}
	if g.RemoteURL != "https://git.example.com/org/repo.git" {
		t.Errorf("RemoteURL = %q: credentials must be removed", g.RemoteURL)
	}
	if g.CommitDate.Year() != 2026 {
		t.Errorf("CommitDate = %v", g.CommitDate)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("b"), 0o644); err != nil {
		t.Fatal(err)
	}
	if g, _ := Read(ctx, dir); !g.Dirty || !g.IsDirty() {
		t.Error("modified tracked file: Dirty = false")
	}
}

// Wait with fields fills those (and the commit) and nothing else; an
// unknown name is everything.
func TestReaderWaitsForFields(t *testing.T) {
	dir := t.TempDir()
	git(t, dir, "init", "-q", "-b", "main")
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("a"), 0o644)
	git(t, dir, "add", "a.txt")
	git(t, dir, "commit", "-q", "-m", "first")
	git(t, dir, "tag", "v1")
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("b"), 0o644)
	r := Start(context.Background(), dir)
	if g := r.Wait("Tag"); g.Tag != "v1" || g.Commit == "" || g.Branch != "" || g.Dirty || g.Root != "" {
		t.Errorf("Wait(Tag) = %+v", g)
	}
	if g := r.Wait("TreeState"); !g.TreeDirty || g.Dirty || g.Tag != "" {
		t.Errorf("Wait(TreeState) = %+v", g)
	}
	if g := r.Wait("Nonsense"); g.Tag != "v1" || g.Branch != "main" || !g.Dirty || !g.TreeDirty || g.Root == "" {
		t.Errorf("Wait(Nonsense) = %+v, want every field", g)
	}
}
