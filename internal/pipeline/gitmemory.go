package pipeline

import (
	"context"

	"github.com/kilnbuild/kiln/internal/vcs"
)

// gitMemory is what one run knows of its checkout's git state: git's
// answers to what the flags' templates ({{.Git.Tag}} and the like) and the
// images' labels ask, and what git answered the last build of the same
// checkout (a gitRecordFile in the cache).
//
// What it guarantees: every git value that reaches a binary, a label or a
// Record is git's answer for the checkout as it is now. A remembered
// answer stands for git's only while vcs.State, a fingerprint of the
// files git's answers depend on, is the one it was given in; otherwise
// it is a guess that only lets the compile start early (gitSettings), and
// that compile is kept only if git then answers the same: if not, it is
// stopped and run again (TestRememberedGitAnswersNeverReachAStaleBinary).
//
// Why it is worth its cost: each git process takes ~10 ms of CPU on a
// two-core machine and a build whose flags ask git must wait for it. A
// warm rebuild of an unchanged checkout whose ldflags ask {{.Git.Tag}},
// with go faked, takes 12 ms with the memory and 82 ms without
// (BenchmarkWarmBuildGitMemory, docs/benchmarks.md); a real `kiln build`
// of cmd/server went from 0.336 s to 0.267 s against a go build floor of
// 0.225 s.
//
// The pipeline makes one with startGitMemory and calls settings once per
// package; ask and waitForFlags are plain reads, remember and waitIdle the
// end of the run.
type gitMemory struct {
	reader *vcs.Reader    // answers field by field; asked only after ready
	ready  chan struct{}  // closed once the reader may be asked (see startGitMemory)
	first  []string       // the fields the flags' templates ask for
	uses   bool           // whether the flags' templates ask git anything
	stored *gitRecordFile // what git answered last time
	state  string         // the checkout's vcs.State before git was asked; "" if none
	guess  *vcs.Git       // the remembered answers for the flags, if any
	late   *gate          // held back until the first compile or the first question
}

// startGitMemory gets the git answers under way. With answers remembered
// from a checkout in the same vcs.State git is not asked at all;
// otherwise git is asked first what the flags need, since the compile
// waits for that unless remembered answers let it start on a guess.
// Unless the compile waits for git, git runs with what CPU the compile
// leaves, and, unless the compile waits for git, only from when late
// opens: the first compile has started or someone asks git. The labels'
// questions follow, and the rest only when a Result's SourceGit asks. ctx
// is the run's: provenance asks for the rest of the git state after the
// builds are done.
func startGitMemory(ctx context.Context, o Options, late *gate) *gitMemory {
	m := &gitMemory{ready: make(chan struct{}), stored: loadGitRecordFile(o.CacheDir, o.Dir), late: late}
	m.first, m.uses = gitFields(configTemplates(o.Config))
	if !m.uses {
		m.first = nil
	}
	if m.uses {
		if g, ok := m.stored.guess(m.first...); ok {
			m.guess = &g
		}
	}
	waits := m.uses && m.guess == nil
	m.reader = vcs.NewReader(ctx, o.Dir, !waits)
	if waits {
		// Nothing to go on: git is asked at once, after the State its
		// answers will be remembered under is taken.
		m.state, _ = vcs.State(o.Dir)
		m.reader.Prefetch(m.first...)
	}
	go func() {
		defer close(m.ready)
		if !waits {
			<-late.ch
			if state, ok := vcs.State(o.Dir); ok {
				m.state = state
				if known, ok := m.stored.known(state); ok {
					m.reader.Know(known)
				}
			}
		}
		if m.uses {
			m.reader.Prefetch(m.first...)
		}
		m.reader.Prefetch(labelGitFields...)
	}()
	return m
}

// ask is git's answer to the named fields (see vcs.Reader.Wait): never a
// guess.
func (m *gitMemory) ask(fields ...string) vcs.Git {
	m.late.open()
	<-m.ready
	return m.reader.Wait(fields...)
}

// waitForFlags returns once git has answered what the flags' templates
// ask; at once when they ask nothing.
func (m *gitMemory) waitForFlags() {
	if m.uses {
		m.ask(m.first...)
	}
}

// gitSettings is one package's settings: expanded with git's answers, and
// also at once with the remembered ones when there are any.
type gitSettings struct {
	final *future[settings] // with git's answers
	guess *settings         // with the remembered answers; nil: none
}

// settings expands one package's settings with git's answers, in its own
// goroutine, and with the remembered answers at once, so that compiles
// can start on them (gitSettings.compile).
func (m *gitMemory) settings(expand func(git func(fields ...string) vcs.Git) (settings, error)) *gitSettings {
	s := &gitSettings{final: goFuture(func() (settings, error) { return expand(m.ask) })}
	if g := m.guess; g != nil {
		if guessed, err := expand(func(...string) vcs.Git { return *g }); err == nil {
			s.guess = &guessed
		}
	}
	return s
}

// wait is the settings expanded with git's answers.
func (s *gitSettings) wait() (settings, error) { return s.final.wait() }

// compile runs build with the settings git's answers give. With a guess
// it starts build at once with the guessed settings and keeps that
// compile only if git's settings are the same; otherwise it stops it,
// waits for it to end, and runs build again.
func (s *gitSettings) compile(ctx context.Context, build func(context.Context, settings) (compiled, error)) (compiled, error) {
	var guessed *future[compiled]
	stop := func() {} // ends the guessed compile and waits for it
	if s.guess != nil {
		gctx, cancel := context.WithCancel(ctx)
		guessed = goFuture(func() (compiled, error) { return build(gctx, *s.guess) })
		stop = func() { cancel(); guessed.wait() }
		defer stop()
	}
	final, err := s.final.wait()
	if err != nil {
		return compiled{}, err
	}
	if guessed != nil && final.sameCompile(*s.guess) {
		return guessed.wait()
	}
	stop() // a wrong guess: its go build ends before the right one starts
	return build(ctx, final)
}

// remember keeps what git answered the flags and labels, with the State
// it answered in, for the next build.
func (m *gitMemory) remember() {
	m.ask(append(append([]string{}, m.first...), labelGitFields...)...)
	m.stored.remember(m.state, m.reader.Answers())
}

// waitIdle blocks until no git command the memory started is running.
func (m *gitMemory) waitIdle() {
	m.late.open()
	<-m.ready
	m.reader.Settle()
}
