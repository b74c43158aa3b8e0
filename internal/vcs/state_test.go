package vcs

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/testutil"
)

// settle waits out the window in which State does not vouch for times.
func settle() { time.Sleep(racyWindow + 20*time.Millisecond) }

func gitIn(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

func newRepo(t *testing.T) string {
	t.Helper()
	testutil.RequireTool(t, "git")
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, map[string]string{"a.txt": "a\n", "sub/b.txt": "b\n"})
	gitIn(t, dir, "init", "-q", "-b", "main")
	gitIn(t, dir, "add", ".")
	gitIn(t, dir, "commit", "-q", "-m", "one")
	return dir
}

func mustState(t *testing.T, dir string) string {
	t.Helper()
	settle()
	s, ok := State(dir)
	if !ok {
		t.Fatalf("State(%s) cannot vouch", dir)
	}
	return s
}

func appendTo(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

func TestStateChangesWithWhatGitAnswers(t *testing.T) {
	racyWindow = 30 * time.Millisecond
	dir := newRepo(t)
	sub := filepath.Join(dir, "sub")
	before := mustState(t, sub)
	if again := mustState(t, sub); again != before {
		t.Fatal("State changed with nothing done")
	}

	// What only the work tree and the index see leaves it alone: go build
	// runs git status, which may rewrite the index.
	testutil.WriteFiles(t, dir, map[string]string{"a.txt": "changed\n", "new.txt": "n\n"})
	if err := os.Chtimes(filepath.Join(dir, "a.txt"), time.Now(), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	gitIn(t, dir, "status", "--porcelain")
	gitIn(t, dir, "status", "--porcelain")
	if s := mustState(t, sub); s != before {
		t.Error("State changed with the work tree or the index")
	}

	gitDir := filepath.Join(dir, ".git")
	for _, change := range []struct {
		name string
		do   func()
	}{
		{"commit", func() { gitIn(t, dir, "commit", "-q", "-a", "-m", "two") }},
		{"lightweight tag", func() { gitIn(t, dir, "tag", "v1") }},
		{"annotated tag", func() { gitIn(t, dir, "tag", "-a", "-m", "m", "v2") }},
		{"remote added", func() { gitIn(t, dir, "remote", "add", "origin", "https://example.com/a.git") }},
		{"remote URL changed", func() { gitIn(t, dir, "remote", "set-url", "origin", "https://example.com/b.git") }},
		{"config edited in place", func() {
			appendTo(t, filepath.Join(gitDir, "config"), "[url \"https://mirror.example/\"]\n\tinsteadOf = https://example.com/\n")
		}},
		{"branch switched", func() { gitIn(t, dir, "checkout", "-q", "-b", "other") }},
		{"detached HEAD", func() { gitIn(t, dir, "checkout", "-q", "--detach") }},
		{"back on a branch", func() { gitIn(t, dir, "checkout", "-q", "main") }},
		{"refs packed", func() { gitIn(t, dir, "pack-refs", "--all") }},
		{"tag deleted", func() { gitIn(t, dir, "tag", "-d", "v1") }},
		{"ref edited in place", func() {
			gitIn(t, dir, "commit", "-q", "--allow-empty", "-m", "a loose ref again")
			settle()
			before = mustState(t, sub)
			appendTo(t, filepath.Join(gitDir, "refs", "heads", "main"), "\n")
		}},
		{"global config", func() {
			home := t.TempDir()
			t.Setenv("HOME", home)
			t.Setenv("XDG_CONFIG_HOME", "")
			settle()
			before = mustState(t, sub)
			testutil.WriteFiles(t, home, map[string]string{".gitconfig": "[core]\n\tabbrev = 12\n"})
		}},
		{"a git variable", func() { t.Setenv("GIT_SSL_NO_VERIFY", "1") }},
	} {
		change.do()
		after := mustState(t, sub)
		if after == before {
			t.Errorf("%s: State unchanged", change.name)
		}
		before = after
	}
}

func TestStateCannotVouch(t *testing.T) {
	racyWindow = 30 * time.Millisecond
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
	}{
		{"not a checkout", func(t *testing.T, dir string) { os.RemoveAll(filepath.Join(dir, ".git")) }},
		{"GIT_DIR set", func(t *testing.T, dir string) { t.Setenv("GIT_DIR", filepath.Join(dir, ".git")) }},
		{"GIT_CONFIG_GLOBAL set", func(t *testing.T, dir string) { t.Setenv("GIT_CONFIG_GLOBAL", "/dev/null") }},
		{"config include", func(t *testing.T, dir string) {
			appendTo(t, filepath.Join(dir, ".git", "config"), "[include]\n\tpath = other\n")
		}},
		{"alternates", func(t *testing.T, dir string) {
			testutil.WriteFiles(t, dir, map[string]string{".git/objects/info/alternates": "/elsewhere/objects\n"})
		}},
		{"config through the environment", func(t *testing.T, dir string) {
			t.Setenv("GIT_CONFIG_COUNT", "1")
			t.Setenv("GIT_CONFIG_KEY_0", "include.path")
			t.Setenv("GIT_CONFIG_VALUE_0", "/elsewhere")
		}},
		{"symlinked .git", func(t *testing.T, dir string) {
			elsewhere := filepath.Join(t.TempDir(), "git")
			if err := os.Rename(filepath.Join(dir, ".git"), elsewhere); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(elsewhere, filepath.Join(dir, ".git")); err != nil {
				t.Fatal(err)
			}
		}},
		{"symlinked global config", func(t *testing.T, dir string) {
			home := t.TempDir()
			t.Setenv("HOME", home)
			t.Setenv("XDG_CONFIG_HOME", "")
			target := filepath.Join(t.TempDir(), "gitconfig")
			testutil.WriteFiles(t, filepath.Dir(target), map[string]string{"gitconfig": "[core]\n\tabbrev = 9\n"})
			if err := os.Symlink(target, filepath.Join(home, ".gitconfig")); err != nil {
				t.Fatal(err)
			}
		}},
		{"reftable", func(t *testing.T, dir string) {
			if err := os.Mkdir(filepath.Join(dir, ".git", "reftable"), 0o755); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := newRepo(t)
			tc.setup(t, dir)
			settle()
			if s, ok := State(dir); ok {
				t.Errorf("State vouches: %s", s)
			}
		})
	}
	t.Run("just changed", func(t *testing.T) {
		racyWindow = time.Hour
		defer func() { racyWindow = 30 * time.Millisecond }()
		if s, ok := State(newRepo(t)); ok {
			t.Errorf("State vouches for times inside the window: %s", s)
		}
	})
}

// A checkout reached through a symlink is fingerprinted where it really
// is, as git finds it.
func TestStateThroughASymlinkedDirectory(t *testing.T) {
	racyWindow = 30 * time.Millisecond
	dir := newRepo(t)
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	before := mustState(t, link)
	gitIn(t, dir, "commit", "-q", "--allow-empty", "-m", "through the link")
	gitIn(t, dir, "tag", "v9")
	if mustState(t, link) == before {
		t.Error("a commit and a tag left the State through a symlink unchanged")
	}
}

// The old remotes/ files name remotes too; an edit in place counts.
func TestStateSeesLegacyRemoteFiles(t *testing.T) {
	racyWindow = 30 * time.Millisecond
	dir := newRepo(t)
	testutil.WriteFiles(t, dir, map[string]string{".git/remotes/origin": "URL: https://example.com/a.git\n"})
	before := mustState(t, dir)
	appendTo(t, filepath.Join(dir, ".git", "remotes", "origin"), "URL: https://example.com/b.git\n")
	if mustState(t, dir) == before {
		t.Error("an edit of .git/remotes/origin left the State unchanged")
	}
}

func TestStateOfALinkedWorktree(t *testing.T) {
	racyWindow = 30 * time.Millisecond
	dir := newRepo(t)
	wt := filepath.Join(t.TempDir(), "wt")
	gitIn(t, dir, "worktree", "add", "-q", "-b", "wt", wt)
	before := mustState(t, wt)
	gitIn(t, wt, "commit", "-q", "--allow-empty", "-m", "in the worktree")
	if mustState(t, wt) == before {
		t.Error("a commit in the worktree left its State unchanged")
	}
}

// Known answers are not asked again, and Answers gives back what a
// Reader knows and was answered, never the tree status.
func TestKnownAnswers(t *testing.T) {
	dir := newRepo(t)
	r := NewReader(context.Background(), dir, true)
	// "tag" is what an older kiln remembered for `describe --always`: not
	// an answer to today's question.
	r.Know(Answers{"lasttag": "remembered", "tag": "old-question", "status": " M a.txt", "porcelain": "?? new.txt"})
	g := r.Wait("Tag", "Commit", "Dirty", "IsDirty")
	r.Settle()
	if g.Tag != "remembered" || len(g.Commit) != 40 {
		t.Errorf("Wait = %+v", g)
	}
	if g.Dirty || g.TreeDirty {
		t.Error("a known tree status was taken: the status must come from the work tree")
	}
	a := r.Answers()
	if a["lasttag"] != "remembered" || a["commit"] != g.Commit || a["tag"] != "" {
		t.Errorf("Answers = %v", a)
	}
	if _, ok := a["porcelain"]; ok {
		t.Errorf("Answers carries the tree status: %v", a)
	}
	if _, ok := a["status"]; ok {
		t.Errorf("Answers carries the tree status: %v", a)
	}
	if back, ok := a.Git("Tag", "Commit"); !ok || back.Tag != "remembered" || back.Commit != g.Commit {
		t.Errorf("Answers.Git = %+v, %v", back, ok)
	}
	if _, ok := a.Git("RemoteURL"); ok {
		t.Error("Answers.Git answers a question never asked")
	}
}

// git stopped before it answered (here: the context ended) gives no
// answer to remember.
func TestUnfinishedQuestionsAreNotAnswers(t *testing.T) {
	dir := newRepo(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := NewReader(ctx, dir, false)
	r.Wait("Commit", "Tag")
	r.Settle()
	if a := r.Answers(); len(a) != 0 {
		t.Errorf("Answers after git was stopped = %v, want none", a)
	}
}
