package pipeline

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/kilnbuild/kiln/internal/vcs"
)

// gitMemory remembers, per checkout, what git answered the last build's
// templates ({{.Git.Tag}} and the like). A build compiles at once with the
// remembered answers while git is asked again, and keeps that compile only
// if git answers the same (it does unless a commit or tag came in between);
// otherwise it stops it and compiles again. The memory saves the wait for
// git, never decides what is built.
type gitMemory struct {
	path string // "" when there is no cache: nothing is remembered
	last []byte // the remembered answers, as stored
}

func loadGitMemory(cacheDir, checkout string) *gitMemory {
	if cacheDir == "" {
		return &gitMemory{}
	}
	sum := sha256.Sum256([]byte(checkout))
	m := &gitMemory{path: filepath.Join(cacheDir, "git", hex.EncodeToString(sum[:16])+".json")}
	m.last, _ = os.ReadFile(m.path) // none yet, or unreadable: no guess
	return m
}

// guess is the answers remembered, if any.
func (m *gitMemory) guess() (vcs.Git, bool) {
	var g vcs.Git
	if len(m.last) == 0 || json.Unmarshal(m.last, &g) != nil {
		return vcs.Git{}, false
	}
	return g, true
}

// remember stores g for the next build when it differs from what is
// remembered. A cache that cannot be written only costs the next build
// its head start.
func (m *gitMemory) remember(g vcs.Git) {
	data, err := json.Marshal(g)
	if m.path == "" || err != nil || bytes.Equal(data, m.last) {
		return
	}
	if os.MkdirAll(filepath.Dir(m.path), 0o755) != nil {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(m.path), ".git-*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(data)
	if cerr := tmp.Close(); werr != nil || cerr != nil || os.Rename(tmp.Name(), m.path) != nil {
		os.Remove(tmp.Name())
		return
	}
	m.last = data
}
