package service

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/kilnbuild/kiln/internal/buildrecord"
	"github.com/kilnbuild/kiln/internal/queue"
	"github.com/kilnbuild/kiln/internal/source"
)

// job is b's place in the queue.
func (s *Service) job(b *buildrecord.Build) queue.Job {
	timeout := s.cfg.BuildTimeout
	if req, err := parseRequest(b.Request, s.cfg.BuildTimeout); err == nil {
		timeout = req.Timeout
	}
	id := b.ID
	return queue.Job{ID: id, Timeout: timeout, Run: func(ctx context.Context) { s.run(ctx, id) }}
}

// outcome is how a build ended.
type outcome struct {
	state   buildrecord.State
	results []buildrecord.Result
	phases  buildrecord.Phases
	err     *buildrecord.Error
}

// run is one build, from queued to its end; its ctx is the queue's.
func (s *Service) run(ctx context.Context, id string) {
	log := s.log.With("build", id)
	store := context.WithoutCancel(ctx) // the records outlive a cancel
	started := s.cfg.Now()
	b, err := s.cfg.Records.Transition(store, id, buildrecord.Running, started, func(b *buildrecord.Build) {
		b.Phases.QueueWait = buildrecord.Duration(started.Sub(b.Times[buildrecord.Queued]))
		b.ServerVersion = s.cfg.Version // the server that runs it
	})
	if err != nil {
		// Cancelled while it waited (its end is already recorded), or
		// the records failed: either way it does not run.
		log.Warn("build not started", "error", err)
		return
	}
	log.Info("build started", "queueWait", time.Duration(b.Phases.QueueWait))
	lw := s.newLogWriter(store, id, log)
	out := s.execute(ctx, b, lw, log)
	out.phases.QueueWait = b.Phases.QueueWait
	msg := "build " + string(out.state)
	if out.err != nil {
		msg += ": " + out.err.Message
	}
	lw.flush()
	lw.line(msg)

	s.m.observe(out.state, out.phases)
	_, err = s.cfg.Records.Transition(store, id, out.state, s.cfg.Now(), func(b *buildrecord.Build) {
		b.Results, b.Phases, b.Error = out.results, out.phases, out.err
	})
	if err != nil {
		log.Error("recording the end of a build failed", "state", out.state, "error", err)
	}
	s.hub.finish(id, out.state)
	log.Info("build ended", "state", out.state)
}

// execute fetches the source into a fresh directory and runs the build.
// A panic in it fails the build instead of the server.
func (s *Service) execute(ctx context.Context, b *buildrecord.Build, lw *logWriter, log *slog.Logger) (out outcome) {
	defer func() {
		if p := recover(); p != nil {
			log.Error("build panicked", "panic", p, "stack", string(debug.Stack()))
			out = outcome{state: buildrecord.Failed, phases: out.phases, err: &buildrecord.Error{Message: "internal error in the build service"}}
		}
	}()
	req, err := parseRequest(b.Request, time.Duration(1<<63-1))
	if err != nil {
		log.Error("a stored build request does not parse", "error", err)
		return outcome{state: buildrecord.Failed, err: &buildrecord.Error{Message: "internal error: the stored request does not parse"}}
	}
	dir, release, err := buildDir(ctx, s.cfg.TempDir, log)
	if err != nil {
		log.Error("making the build directory failed", "error", err)
		return outcome{state: buildrecord.Failed, err: &buildrecord.Error{Message: "internal error: no build directory"}}
	}
	defer release() // after the removal below
	defer func() {
		if err := removeAll(dir); err != nil {
			log.Warn("removing the build directory failed", "error", err)
		}
	}()
	lw.hidePath(dir)

	lw.line(fmt.Sprintf("fetching %s source %s", b.Source.Kind, b.Source.Ref))
	start := time.Now()
	moduleDir, err := s.cfg.Sources.Fetch(ctx, b.Source, dir)
	out.phases.SourceFetch = buildrecord.Duration(time.Since(start))
	if err != nil {
		if ctx.Err() == nil && !errors.Is(err, source.ErrInvalid) {
			log.Error("fetching the source failed", "error", err)
			err = errors.New("fetching the source failed: see the server's log")
		}
		return s.end(ctx, out, err, dir)
	}
	results, phases, err := s.cfg.Runner.Run(ctx, req.Build, moduleDir, lw)
	out.results = results
	out.phases.Compile, out.phases.Layer, out.phases.Push, out.phases.Sign = phases.Compile, phases.Layer, phases.Push, phases.Sign
	return s.end(ctx, out, err, dir)
}

// end names how a build ended: by its ctx's cause when the ctx ended
// (cancel, timeout, shutdown), else by err.
func (s *Service) end(ctx context.Context, out outcome, err error, dir string) outcome {
	if err == nil && ctx.Err() == nil {
		out.state = buildrecord.Succeeded
		return out
	}
	out.results = nil
	if ctx.Err() != nil {
		switch cause := context.Cause(ctx); {
		case errors.Is(cause, queue.ErrCancelled):
			out.state, out.err = buildrecord.Cancelled, &buildrecord.Error{Message: "build cancelled"}
			return out
		case errors.Is(cause, queue.ErrTimeout):
			out.state, out.err = buildrecord.TimedOut, &buildrecord.Error{Message: "build timed out: ask for a longer timeout, up to the server's --build-timeout"}
			return out
		case errors.Is(cause, queue.ErrShutdown):
			out.state, out.err = buildrecord.Interrupted, &buildrecord.Error{Message: "the server shut down during the build: retry it"}
			return out
		}
	}
	text := strings.TrimSpace(strings.ReplaceAll(err.Error(), dir, "."))
	first, rest, _ := strings.Cut(text, "\n")
	out.state, out.err = buildrecord.Failed, &buildrecord.Error{Message: first, Output: strings.TrimSpace(rest)}
	return out
}

// removeAll removes a build directory, making read-only directories (as
// a module cache extracts them) writable first when it has to.
func removeAll(dir string) error {
	if os.RemoveAll(dir) == nil {
		return nil
	}
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(path, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}
