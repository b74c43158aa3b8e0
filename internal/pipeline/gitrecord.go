package pipeline

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"

	"github.com/kilnbuild/kiln/internal/vcs"
)

// gitRecordFile is the cache file that remembers, per checkout, what git
// answered the last build (the commit, {{.Git.Tag}} and the like) and the
// checkout's vcs.State then (see gitMemory for how it is used).
type gitRecordFile struct {
	path string // "" when there is no cache: nothing is remembered
	last []byte // the remembered record, as stored
	rec  gitRecord
}

type gitRecord struct {
	State   string      `json:"state"`
	Answers vcs.Answers `json:"answers"`
}

func loadGitRecordFile(cacheDir, checkout string) *gitRecordFile {
	if cacheDir == "" {
		return &gitRecordFile{}
	}
	sum := sha256.Sum256([]byte(checkout))
	m := &gitRecordFile{path: filepath.Join(cacheDir, "git", hex.EncodeToString(sum[:16])+".json")}
	data, err := os.ReadFile(m.path)
	if err == nil && json.Unmarshal(data, &m.rec) == nil {
		m.last = data
	} else {
		m.rec = gitRecord{} // none yet, or unreadable: nothing remembered
	}
	return m
}

// known is the remembered answers if state, the checkout's State now, is
// the one they were given in: then they are git's answers.
func (m *gitRecordFile) known(state string) (vcs.Answers, bool) {
	if state == "" || state != m.rec.State || len(m.rec.Answers) == 0 {
		return nil, false
	}
	return m.rec.Answers, true
}

// guess is what the remembered answers say of fields, if they say it.
func (m *gitRecordFile) guess(fields ...string) (vcs.Git, bool) {
	if len(m.rec.Answers) == 0 {
		return vcs.Git{}, false
	}
	return m.rec.Answers.Git(fields...)
}

// remember stores answers and the State they were given in ("" when it
// could not be had: they are then only a guess next time) when that
// differs from what is remembered. A cache that cannot be written only
// costs the next build its head start.
func (m *gitRecordFile) remember(state string, answers vcs.Answers) {
	data, err := json.Marshal(gitRecord{State: state, Answers: answers})
	if m.path == "" || err != nil || bytes.Equal(data, m.last) {
		return
	}
	dir := filepath.Dir(m.path)
	if os.MkdirAll(dir, 0o755) != nil || renameio.WriteFile(m.path, data, 0o600, renameio.WithTempDir(dir)) != nil {
		return
	}
	m.last = data
}
