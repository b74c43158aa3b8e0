package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/kilnbuild/kiln/internal/vcs"
)

// gitMemory remembers, per checkout, what git answered the last build
// (the commit, {{.Git.Tag}} and the like) and the checkout's vcs.State
// then. While the State is the same the answers are git's and git is not
// asked at all. Otherwise the compile starts with the remembered answers
// while git is asked again, and is kept only if git answers the same;
// if not, it is stopped and run again. A guess saves the wait for git and
// never decides what is built.
type gitMemory struct {
	path string // "" when there is no cache: nothing is remembered
	last []byte // the remembered record, as stored
	rec  gitRecord
}

type gitRecord struct {
	State   string      `json:"state"`
	Answers vcs.Answers `json:"answers"`
}

func loadGitMemory(cacheDir, checkout string) *gitMemory {
	if cacheDir == "" {
		return &gitMemory{}
	}
	sum := sha256.Sum256([]byte(checkout))
	m := &gitMemory{path: filepath.Join(cacheDir, "git", hex.EncodeToString(sum[:16])+".json")}
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
func (m *gitMemory) known(state string) (vcs.Answers, bool) {
	if state == "" || state != m.rec.State || len(m.rec.Answers) == 0 {
		return nil, false
	}
	return m.rec.Answers, true
}

// guess is what the remembered answers say of fields, if they say it.
func (m *gitMemory) guess(fields ...string) (vcs.Git, bool) {
	if len(m.rec.Answers) == 0 {
		return vcs.Git{}, false
	}
	return m.rec.Answers.Git(fields...)
}

// remember stores answers and the State they were given in ("" when it
// could not be had: they are then only a guess next time) when that
// differs from what is remembered. A cache that cannot be written only
// costs the next build its head start.
func (m *gitMemory) remember(state string, answers vcs.Answers) {
	data, err := json.Marshal(gitRecord{State: state, Answers: answers})
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

// startGit gets the git answers under way. With answers remembered from
// a checkout in the same vcs.State git is not asked at all; otherwise git
// is asked first what the flags need, since the compile waits for that
// unless remembered answers let it start on a guess. Unless the compile
// waits for git, git runs with what CPU the compile leaves. The labels'
// questions follow, and the rest only when a Result's SourceGit asks.
func (r *run) startGit(ctx context.Context) {
	o := r.opts
	r.gitFirst, r.gitUses = gitFields(configTemplates(o.Config))
	if !r.gitUses {
		r.gitFirst = nil
	}
	r.gitMemory = loadGitMemory(o.CacheDir, o.Dir)
	if r.gitUses {
		if g, ok := r.gitMemory.guess(r.gitFirst...); ok {
			r.gitGuess = &g
		}
	}
	waits := r.gitUses && r.gitGuess == nil
	// The run's context: provenance asks for the rest of the git state
	// after the builds are done.
	r.gitReader = vcs.NewReader(ctx, o.Dir, !waits)
	r.gitReady = make(chan struct{})
	if waits {
		// Nothing to go on: git is asked at once, after the State its
		// answers will be remembered under is taken.
		r.gitState, _ = vcs.State(o.Dir)
		r.gitReader.Prefetch(r.gitFirst...)
	}
	go func() {
		defer close(r.gitReady)
		if !waits {
			if state, ok := vcs.State(o.Dir); ok {
				r.gitState = state
				if known, ok := r.gitMemory.known(state); ok {
					r.gitReader.Know(known)
				}
			}
		}
		if r.gitUses {
			r.gitReader.Prefetch(r.gitFirst...)
		}
		r.gitReader.Prefetch(labelGitFields...)
	}()
}

// git answers the named fields (see vcs.Reader.Wait).
func (r *run) git(fields ...string) vcs.Git {
	<-r.gitReady
	return r.gitReader.Wait(fields...)
}

// rememberGit keeps what git answered the flags and labels, with the
// State it answered in, for the next build.
func (r *run) rememberGit() {
	r.git(append(append([]string{}, r.gitFirst...), labelGitFields...)...)
	r.gitMemory.remember(r.gitState, r.gitReader.Answers())
}
