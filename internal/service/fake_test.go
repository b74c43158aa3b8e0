package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kilnbuild/kiln/internal/buildrecord"
	"github.com/kilnbuild/kiln/internal/source"
)

// fakeRecords is an in-memory Records: enough of internal/records's
// behaviour (IDs that sort by creation, the state edges, Recover) for the
// service's tests. wait blocks until a build is as a test wants it.
type fakeRecords struct {
	mu      sync.Mutex
	changed *sync.Cond
	n       int
	builds  map[string]*buildrecord.Build
	logs    map[string][]buildrecord.LogLine
	now     func() time.Time
	pingErr error
	failAll error // every write fails with it
}

func newFakeRecords() *fakeRecords {
	f := &fakeRecords{builds: map[string]*buildrecord.Build{}, logs: map[string][]buildrecord.LogLine{}, now: time.Now}
	f.changed = sync.NewCond(&f.mu)
	return f
}

func clone(b *buildrecord.Build) *buildrecord.Build {
	c := *b
	c.Times = maps.Clone(b.Times)
	c.Packages = slices.Clone(b.Packages)
	c.Results = slices.Clone(b.Results)
	if b.Error != nil {
		e := *b.Error
		c.Error = &e
	}
	return &c
}

func (f *fakeRecords) Create(_ context.Context, b *buildrecord.Build) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failAll != nil {
		return f.failAll
	}
	f.n++
	b.ID = fmt.Sprintf("b%06d", f.n)
	b.State = buildrecord.Queued
	b.Times = map[buildrecord.State]time.Time{buildrecord.Queued: f.now()}
	f.builds[b.ID] = clone(b)
	f.changed.Broadcast()
	return nil
}

func (f *fakeRecords) Get(_ context.Context, id string) (*buildrecord.Build, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.builds[id]
	if !ok {
		return nil, fmt.Errorf("build %s: %w", id, buildrecord.ErrNotFound)
	}
	return clone(b), nil
}

func (f *fakeRecords) List(_ context.Context, flt buildrecord.Filter) (buildrecord.Page, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := slices.Sorted(maps.Keys(f.builds))
	slices.Reverse(ids)
	limit := flt.Limit
	if limit == 0 {
		limit = 50
	}
	var p buildrecord.Page
	for _, id := range ids {
		b := f.builds[id]
		if flt.Cursor != "" && id >= flt.Cursor ||
			flt.State != "" && b.State != flt.State ||
			flt.SourceKind != "" && b.Source.Kind != flt.SourceKind ||
			flt.Package != "" && !slices.Contains(b.Packages, flt.Package) {
			continue
		}
		if len(p.Builds) == limit {
			p.Next = p.Builds[limit-1].ID
			break
		}
		p.Builds = append(p.Builds, clone(b))
	}
	return p, nil
}

func allowed(from, to buildrecord.State) bool {
	switch from {
	case buildrecord.Queued:
		return to == buildrecord.Running || to == buildrecord.Cancelled || to == buildrecord.Interrupted
	case buildrecord.Running:
		return to.Final()
	}
	return false
}

func (f *fakeRecords) Transition(_ context.Context, id string, to buildrecord.State, at time.Time, update func(*buildrecord.Build)) (*buildrecord.Build, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failAll != nil {
		return nil, f.failAll
	}
	b, ok := f.builds[id]
	if !ok {
		return nil, fmt.Errorf("build %s: %w", id, buildrecord.ErrNotFound)
	}
	if !allowed(b.State, to) {
		return nil, fmt.Errorf("build %s from %s to %s: %w", id, b.State, to, buildrecord.ErrTransition)
	}
	b.State = to
	b.Times[to] = at
	if update != nil {
		update(b)
	}
	f.changed.Broadcast()
	return clone(b), nil
}

func (f *fakeRecords) Recover(_ context.Context, at time.Time) (queued, interrupted []*buildrecord.Build, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range slices.Sorted(maps.Keys(f.builds)) {
		b := f.builds[id]
		switch b.State {
		case buildrecord.Running:
			b.State = buildrecord.Interrupted
			b.Times[buildrecord.Interrupted] = at
			interrupted = append(interrupted, clone(b))
		case buildrecord.Queued:
			queued = append(queued, clone(b))
		}
	}
	return queued, interrupted, nil
}

func (f *fakeRecords) AppendLog(_ context.Context, id, text string) ([]buildrecord.LogLine, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(f.logs[id])
	for _, line := range strings.Split(text, "\n") {
		f.logs[id] = append(f.logs[id], buildrecord.LogLine{Seq: int64(len(f.logs[id]) + 1), Text: line})
	}
	return slices.Clone(f.logs[id][n:]), nil
}

func (f *fakeRecords) Log(_ context.Context, id string, after int64) ([]buildrecord.LogLine, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []buildrecord.LogLine
	for _, l := range f.logs[id] {
		if l.Seq > after {
			out = append(out, l)
		}
	}
	return out, nil
}

func (f *fakeRecords) Ping(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pingErr
}

// wait blocks until build id is in state.
func (f *fakeRecords) wait(id string, state buildrecord.State) *buildrecord.Build {
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.builds[id] == nil || f.builds[id].State != state {
		f.changed.Wait()
	}
	return clone(f.builds[id])
}

func (f *fakeRecords) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.builds)
}

// put stores a record as an earlier run left it.
func (f *fakeRecords) put(b *buildrecord.Build) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	b.ID = fmt.Sprintf("b%06d", f.n)
	f.builds[b.ID] = clone(b)
}

// fakeSources resolves any spec with one field set; a module "bad" is
// refused as invalid. Fetch makes a module directory in the build's.
type fakeSources struct {
	mu       sync.Mutex
	resolved int
	uploads  map[string][]byte
	saved    int      // uploads ever saved, for their IDs
	fetched  []string // build directories
	fetchErr error
}

func (f *fakeSources) Resolve(_ context.Context, spec source.Spec) (buildrecord.Source, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resolved++
	switch {
	case spec.Module == "bad":
		return buildrecord.Source{}, fmt.Errorf("%w: module path %q is malformed", source.ErrInvalid, spec.Module)
	case spec.Module != "":
		return buildrecord.Source{Kind: "module", Ref: spec.Module, Revision: "v1.0.0", Hash: "h1:x"}, nil
	case spec.Upload != "":
		if _, ok := f.uploads[spec.Upload]; !ok {
			return buildrecord.Source{}, fmt.Errorf("%w: no upload %q", source.ErrInvalid, spec.Upload)
		}
		return buildrecord.Source{Kind: "upload", Ref: spec.Upload, Subdir: spec.Subdir}, nil
	case spec.Workspace != "":
		return buildrecord.Source{Kind: "workspace", Ref: spec.Workspace}, nil
	}
	return buildrecord.Source{}, fmt.Errorf("%w: give one of workspace, upload, git or module", source.ErrInvalid)
}

func (f *fakeSources) Fetch(ctx context.Context, src buildrecord.Source, dir string) (string, error) {
	f.mu.Lock()
	f.fetched = append(f.fetched, dir)
	err := f.fetchErr
	f.mu.Unlock()
	if err != nil {
		return "", err
	}
	mod := filepath.Join(dir, "src")
	return mod, os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module x\n"), 0o644)
}

func (f *fakeSources) SaveUpload(_ context.Context, r io.Reader) (string, bool, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return "", false, fmt.Errorf("saving an upload in /srv/kiln/uploads: %w", err)
	}
	if !strings.HasPrefix(string(b), "\x1f\x8b") {
		return "", false, fmt.Errorf("%w: the archive is not gzip", source.ErrInvalid)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.uploads == nil {
		f.uploads = map[string][]byte{}
	}
	for id, had := range f.uploads {
		if bytes.Equal(had, b) {
			return id, false, nil
		}
	}
	f.saved++
	id := fmt.Sprintf("u%d", f.saved)
	f.uploads[id] = b
	return id, true, nil
}

func (f *fakeSources) DeleteUpload(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.uploads, id)
	return nil
}

// evilConfig is the .ko.yaml of a workspace named "toolexec" and of an
// upload whose bytes hold "toolexec".
var evilConfig = source.ConfigFile{Name: ".ko.yaml", Data: []byte("defaultFlags: [-toolexec=/bin/evil]\n")}

func (f *fakeSources) Config(_ context.Context, src buildrecord.Source) (*source.ConfigFile, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case src.Kind == "workspace" && src.Ref == "toolexec",
		src.Kind == "upload" && strings.Contains(string(f.uploads[src.Ref]), "toolexec"):
		return &evilConfig, nil
	}
	return nil, nil
}

func (f *fakeSources) counts() (resolved, uploads int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.resolved, len(f.uploads)
}

// fakeRunner checks requests as request.Build would (strict fields,
// packages required, sign needs a key, known platforms) and runs run.
type fakeRunner struct {
	mu   sync.Mutex
	runs int
	run  func(ctx context.Context, log io.Writer) ([]buildrecord.Result, error)
}

type fakeBuild struct {
	Packages  []string `json:"packages"`
	Platforms []string `json:"platforms,omitempty"`
	Sign      bool     `json:"sign,omitempty"`
}

func (f *fakeRunner) Check(build json.RawMessage) ([]string, error) {
	var b fakeBuild
	if err := decodeStrict(build, &b); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalid, err.(*apiError).message)
	}
	if len(b.Packages) == 0 {
		return nil, fmt.Errorf("%w: no packages: name at least one", ErrInvalid)
	}
	if b.Sign {
		return nil, fmt.Errorf("%w: sign needs a signing key: start the server with --signing-key", ErrInvalid)
	}
	for _, p := range b.Platforms {
		if p != "linux/amd64" && p != "linux/arm64" {
			return nil, fmt.Errorf("%w: unknown platform %q", ErrInvalid, p)
		}
	}
	return b.Packages, nil
}

// CheckConfig refuses -toolexec as gobuild's rule does.
func (f *fakeRunner) CheckConfig(_ json.RawMessage, cfg source.ConfigFile) error {
	if strings.Contains(string(cfg.Data), "-toolexec") {
		return fmt.Errorf("%w: %s: build flag \"-toolexec=/bin/evil\": -toolexec is not allowed", ErrInvalid, cfg.Name)
	}
	return nil
}

func (f *fakeRunner) Run(ctx context.Context, build json.RawMessage, moduleDir string, log io.Writer) ([]buildrecord.Result, buildrecord.Phases, error) {
	f.mu.Lock()
	f.runs++
	run := f.run
	f.mu.Unlock()
	fmt.Fprintf(log, "compiling in %s\n", moduleDir)
	phases := buildrecord.Phases{Compile: buildrecord.Duration(time.Millisecond)}
	if run == nil {
		return []buildrecord.Result{{ImportPath: "example.com/app", Ref: "localhost/app@sha256:aa", Digest: "sha256:aa"}}, phases, nil
	}
	res, err := run(ctx, log)
	return res, phases, err
}

func (f *fakeRunner) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.runs
}

// blockUntil is a run that waits for release or its ctx.
func blockUntil(release <-chan struct{}, started chan<- string) func(context.Context, io.Writer) ([]buildrecord.Result, error) {
	return func(ctx context.Context, log io.Writer) ([]buildrecord.Result, error) {
		if started != nil {
			started <- "started"
		}
		select {
		case <-release:
			return nil, nil
		case <-ctx.Done():
			return nil, errors.New("compile stopped: " + ctx.Err().Error())
		}
	}
}
