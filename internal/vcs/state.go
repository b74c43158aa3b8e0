package vcs

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// State fingerprints what git's answers about dir depend on, the work tree
// aside: the repository's refs, HEAD, objects and config, the user's and
// the system's git config, and the git program. Answers remembered under a
// State are git's answers for as long as State returns the same string, so
// a caller may skip asking git (every question but the tree status, which
// depends on the work tree).
//
// It relies on how git writes: refs, HEAD, packed-refs, config and objects
// are replaced by renaming a new file into place, which changes the
// directory's times; the files whose contents matter are also stat'ed, for
// editors that write in place. ok is false when it cannot vouch: no .git
// found, config includes, alternates, the reftable
// format, a repository another user owns, git variables that point
// elsewhere (other GIT_* variables are part of the fingerprint), or a
// time so recent that a change in the same clock tick would not show.
func State(dir string) (state string, ok bool) {
	fp := &fingerprint{h: sha256.New(), now: time.Now()}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, "GIT_") {
			continue
		}
		if redirects(k) {
			return "", false // another repository, config file or object store
		}
		fmt.Fprintf(fp.h, "env %s\n", kv)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", false
	}
	// git works from the real path (the top level it reports is one).
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", false
	}
	gitDir, commonDir, ok := findGitDir(real)
	if !ok {
		return "", false
	}
	fmt.Fprintf(fp.h, "dir %s %s\n", abs, real)
	gitBin, err := exec.LookPath("git")
	if err != nil {
		return "", false
	}
	gitReal, err := filepath.EvalSymlinks(gitBin)
	if err != nil {
		return "", false
	}
	fmt.Fprintf(fp.h, "git %s\n", gitBin)
	fp.stat(gitReal)
	for _, name := range []string{"reftable", "objects/info/alternates"} {
		if _, err := os.Lstat(filepath.Join(commonDir, name)); err == nil {
			return "", false
		}
	}
	for _, f := range configFiles(commonDir, gitDir, gitReal) {
		fp.config(f)
	}
	// The files at the top that answers depend on, present or not (the
	// directory's own times change with every index write, so they are
	// not used).
	for _, name := range []string{"HEAD", "commondir"} {
		fp.stat(filepath.Join(gitDir, name))
	}
	for _, name := range []string{"packed-refs", "shallow", "info/grafts"} {
		fp.stat(filepath.Join(commonDir, name))
	}
	fp.tree(commonDir, "", gitDir != commonDir)
	if gitDir != commonDir {
		fp.tree(gitDir, "", false)
	}
	if fp.bad {
		return "", false
	}
	return hex.EncodeToString(fp.h.Sum(nil)), true
}

// redirects reports whether the git variable k points git at files State
// does not look at: another git directory, work tree, object store, config
// file, graft or shallow file, or a search that ends elsewhere.
func redirects(k string) bool {
	// Config given in the environment may include files by name.
	for _, part := range []string{"DIR", "WORK_TREE", "FILE", "DISCOVERY", "CONFIG_GLOBAL", "CONFIG_SYSTEM", "CONFIG_NOSYSTEM", "CONFIG_COUNT", "CONFIG_PARAMETERS", "CONFIG_KEY_"} {
		if strings.Contains(k, part) {
			return true
		}
	}
	return k == "GIT_CONFIG"
}

// findGitDir finds the repository dir belongs to as git does, upward from
// dir: the git directory (for a linked worktree, its own) and the common
// one, where refs, objects and config live.
func findGitDir(dir string) (gitDir, commonDir string, ok bool) {
	for d := dir; ; d = filepath.Dir(d) {
		p := filepath.Join(d, ".git")
		st, err := os.Lstat(p)
		switch {
		case err == nil && st.Mode()&os.ModeSymlink != 0:
			return "", "", false // followed by git, not fingerprinted here
		case err == nil && st.IsDir():
			gitDir = p
		case err == nil && st.Mode().IsRegular():
			data, err := os.ReadFile(p)
			target, found := strings.CutPrefix(strings.TrimSpace(string(data)), "gitdir: ")
			if err != nil || !found {
				return "", "", false
			}
			if !filepath.IsAbs(target) {
				target = filepath.Join(d, target)
			}
			gitDir = filepath.Clean(target)
		case err != nil && !os.IsNotExist(err):
			return "", "", false
		}
		if gitDir != "" {
			break
		}
		if filepath.Dir(d) == d {
			return "", "", false
		}
	}
	st, err := os.Stat(gitDir)
	if err != nil || !st.IsDir() {
		return "", "", false
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); !ok || int(sys.Uid) != os.Getuid() {
		return "", "", false // git may refuse it (safe.directory)
	}
	commonDir = gitDir
	if data, err := os.ReadFile(filepath.Join(gitDir, "commondir")); err == nil {
		c := strings.TrimSpace(string(data))
		if !filepath.IsAbs(c) {
			c = filepath.Join(gitDir, c)
		}
		commonDir = filepath.Clean(c)
	}
	return gitDir, commonDir, true
}

// configFiles are the config files git reads, system to worktree. The
// system file is /etc/gitconfig for a git installed under /usr, else
// PREFIX/etc/gitconfig for one at PREFIX/bin/git: both are looked at.
func configFiles(commonDir, gitDir, gitBin string) []string {
	home, _ := os.UserHomeDir()
	xdg := os.Getenv("XDG_CONFIG_HOME")
	if xdg == "" && home != "" {
		xdg = filepath.Join(home, ".config")
	}
	files := []string{"/etc/gitconfig"}
	if prefix := filepath.Dir(filepath.Dir(gitBin)); prefix != "/usr" && prefix != "/" {
		files = append(files, filepath.Join(prefix, "etc", "gitconfig"))
	}
	if xdg != "" {
		files = append(files, filepath.Join(xdg, "git", "config"))
	}
	if home != "" {
		files = append(files, filepath.Join(home, ".gitconfig"))
	}
	return append(files, filepath.Join(commonDir, "config"), filepath.Join(gitDir, "config.worktree"))
}

// fingerprint hashes file identities and times.
type fingerprint struct {
	h   hash.Hash
	now time.Time
	bad bool // cannot vouch
}

// stat adds path's identity and times, or its absence.
func (fp *fingerprint) stat(path string) fs.FileInfo {
	st, err := os.Lstat(path)
	if err != nil {
		if !os.IsNotExist(err) {
			fp.bad = true
		}
		fmt.Fprintf(fp.h, "absent %s\n", path)
		return nil
	}
	fp.add(path, st)
	return st
}

func (fp *fingerprint) add(path string, st fs.FileInfo) {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok || st.Mode()&os.ModeSymlink != 0 {
		fp.bad = true // a link's target is not fingerprinted
		return
	}
	mtime := time.Unix(sys.Mtim.Unix())
	ctime := time.Unix(sys.Ctim.Unix())
	// A change in the clock tick this was read in could leave the same
	// times behind: too recent to vouch for. File systems that keep whole
	// seconds get a window of two.
	window := racyWindow
	if mtime.Nanosecond() == 0 && ctime.Nanosecond() == 0 {
		window = max(window, 2*time.Second)
	}
	if fp.now.Sub(mtime) < window || fp.now.Sub(ctime) < window {
		fp.bad = true
	}
	fmt.Fprintf(fp.h, "%s %o %d %d %d %d\n", path, st.Mode(), sys.Ino, st.Size(), mtime.UnixNano(), ctime.UnixNano())
}

// racyWindow is how recent a time must be for the fingerprint not to vouch
// for it; far above a filesystem clock's tick.
var racyWindow = 100 * time.Millisecond

// config adds a config file; one that includes others cannot be vouched
// for, as the included files are not followed.
func (fp *fingerprint) config(path string) {
	if fp.stat(path) == nil {
		return
	}
	data, err := os.ReadFile(path)
	if err != nil || bytes.Contains(bytes.ToLower(data), []byte("include")) {
		fp.bad = true
	}
}

// skipped are the parts of a git directory no answer depends on.
var skipped = map[string]bool{"logs": true, "hooks": true, "lfs": true, "modules": true, "rr-cache": true}

// tree adds every directory under root but root itself (renames into them
// change their times) and every file under refs/ (and the old remotes/
// and branches/), which a hand edit may rewrite in place. Loose objects are never rewritten: their directories
// suffice.
func (fp *fingerprint) tree(root, rel string, skipWorktrees bool) {
	dir := filepath.Join(root, rel)
	entries, err := os.ReadDir(dir)
	if err != nil {
		fp.bad = true
		return
	}
	inRefs := false // where a file's contents matter
	for _, d := range []string{"refs", "remotes", "branches"} {
		inRefs = inRefs || rel == d || strings.HasPrefix(rel, d+string(filepath.Separator))
	}
	for _, e := range entries {
		if e.Type()&os.ModeSymlink != 0 {
			fp.bad = true // a link's target is not fingerprinted
			return
		}
		name := filepath.Join(rel, e.Name())
		if rel == "" && (skipped[e.Name()] || skipWorktrees && e.Name() == "worktrees") {
			continue
		}
		switch {
		case e.IsDir():
			st, err := e.Info()
			if err != nil {
				fp.bad = true
				return
			}
			fp.add(name, st)
			if rel == "objects" && len(e.Name()) == 2 {
				continue // loose objects: added by rename only
			}
			fp.tree(root, name, false)
		case inRefs:
			fp.stat(filepath.Join(root, name))
		}
	}
}
