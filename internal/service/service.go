package service

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kilnbuild/kiln/internal/buildrecord"
	"github.com/kilnbuild/kiln/internal/queue"
	"github.com/kilnbuild/kiln/internal/source"
)

// Records keeps builds and their logs; *records.DB satisfies it. A missing
// build is an error matching buildrecord.ErrNotFound, a refused state
// change one matching buildrecord.ErrTransition.
type Records interface {
	// Create stores a new build: it sets ID, State (queued) and Times.
	Create(ctx context.Context, b *buildrecord.Build) error
	Get(ctx context.Context, id string) (*buildrecord.Build, error)
	List(ctx context.Context, f buildrecord.Filter) (buildrecord.Page, error)
	// Transition moves a build to state to at a time, applying update
	// to the record in the same step.
	Transition(ctx context.Context, id string, to buildrecord.State, at time.Time, update func(*buildrecord.Build)) (*buildrecord.Build, error)
	// Recover marks running builds interrupted and returns them, and the
	// queued ones oldest first.
	Recover(ctx context.Context, at time.Time) (queued, interrupted []*buildrecord.Build, err error)
	// AppendLog adds lines (joined by "\n", none empty, no trailing
	// newline) to a build's log and returns the lines it stored, as
	// stored (past the log's cap: none, or its last line saying so);
	// Log returns the lines after seq after.
	AppendLog(ctx context.Context, id, text string) ([]buildrecord.LogLine, error)
	Log(ctx context.Context, id string, after int64) ([]buildrecord.LogLine, error)
	Ping(ctx context.Context) error
}

// Sources resolves and fetches a build's code; *source.Fetcher satisfies
// it. Errors matching source.ErrInvalid are the client's.
type Sources interface {
	Resolve(ctx context.Context, spec source.Spec) (buildrecord.Source, error)
	Fetch(ctx context.Context, src buildrecord.Source, dir string) (moduleDir string, err error)
	// SaveUpload stores an archive; created is false when it was
	// stored already. DeleteUpload removes one.
	SaveUpload(ctx context.Context, r io.Reader) (id string, created bool, err error)
	DeleteUpload(id string) error
	// Config returns the source's .ko.yaml when its tree is known at
	// submission (workspaces and uploads), nil otherwise.
	Config(ctx context.Context, src buildrecord.Source) (*source.ConfigFile, error)
}

// ErrInvalid marks a build request the Runner refuses as bad input.
var ErrInvalid = errors.New("invalid build request")

// Runner is the kiln build itself.
type Runner interface {
	// Check decodes and validates the build fields of a request
	// (everything but "source" and "timeout") strictly, unknown fields
	// refused; bad input wraps ErrInvalid. It returns the packages.
	Check(build json.RawMessage) (packages []string, err error)
	// CheckConfig applies the build rule of kiln build (no -toolexec,
	// cgo or foreign GOFLAGS…) to a source's config as the request
	// would build with it, before anything is queued; a refusal wraps
	// ErrInvalid.
	CheckConfig(build json.RawMessage, cfg source.ConfigFile) error
	// Run builds in moduleDir, writing progress lines to log.
	Run(ctx context.Context, build json.RawMessage, moduleDir string, log io.Writer) ([]buildrecord.Result, buildrecord.Phases, error)
}

// Defaults of Config.
const (
	DefaultBuildTimeout  = 30 * time.Minute
	DefaultShutdownGrace = 30 * time.Second
	DefaultMaxUpload     = 256 << 20
	// MaxJSON bounds a JSON request body.
	MaxJSON = 1 << 20
)

// Config is what a Service runs with. Records, Sources and Runner are
// required; zero values of the rest take their defaults.
type Config struct {
	Records Records
	Sources Sources
	Runner  Runner
	Logger  *slog.Logger // default: discard

	// TempDir holds each build's own directory (default os.TempDir()).
	TempDir string
	// Tokens are the API's bearer tokens. With none, only loopback
	// clients may call the API.
	Tokens []string
	// PublicRead lets GET requests through without a token.
	PublicRead bool

	MaxRunning int // builds at once (default: half the CPUs, at least 1)
	MaxQueue   int // builds waiting (default queue.DefaultMaxQueue)
	// BuildTimeout is a build's default timeout and the most a request
	// may ask for.
	BuildTimeout  time.Duration
	ShutdownGrace time.Duration
	MaxUpload     int64 // bytes of an uploaded archive

	Version string // the server's, stored on each record
	// Metrics is where the service registers its metrics; nil makes a
	// registry of its own (with the Go and process collectors).
	Metrics *prometheus.Registry
	// Now is the clock of records' timestamps (default time.Now).
	Now func() time.Time
}

// Service is the build service. Its methods are safe for concurrent use.
type Service struct {
	cfg     Config
	log     *slog.Logger
	q       *queue.Queue
	hub     *hub
	m       *metrics
	tokens  [][sha256.Size]byte
	closing atomic.Bool
}

// New checks cfg, recovers the records of an earlier run (running builds
// become interrupted, queued ones are queued again) and starts the workers.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Records == nil || cfg.Sources == nil || cfg.Runner == nil {
		return nil, errors.New("service: Records, Sources and Runner are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.TempDir == "" {
		cfg.TempDir = os.TempDir()
	}
	if cfg.BuildTimeout <= 0 {
		cfg.BuildTimeout = DefaultBuildTimeout
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = DefaultShutdownGrace
	}
	if cfg.MaxUpload <= 0 {
		cfg.MaxUpload = DefaultMaxUpload
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Service{cfg: cfg, log: cfg.Logger, hub: newHub()}
	for _, t := range cfg.Tokens {
		if t = strings.TrimSpace(t); t != "" {
			s.tokens = append(s.tokens, sha256.Sum256([]byte(t)))
		}
	}
	s.q = queue.New(queue.Config{MaxRunning: cfg.MaxRunning, MaxQueue: cfg.MaxQueue})
	m, err := newMetrics(cfg.Metrics, s.q)
	if err != nil {
		s.q.Shutdown(ctx)
		return nil, err
	}
	s.m = m
	if err := s.recover(ctx); err != nil {
		s.q.Shutdown(ctx)
		return nil, err
	}
	return s, nil
}

// recover applies Records.Recover and queues the builds left queued.
func (s *Service) recover(ctx context.Context) error {
	queued, interrupted, err := s.cfg.Records.Recover(ctx, s.cfg.Now())
	if err != nil {
		return fmt.Errorf("recovering build records: %w", err)
	}
	for _, b := range interrupted {
		s.log.Warn("build was running when the server stopped: marked interrupted", "build", b.ID)
		s.m.builds.WithLabelValues(string(buildrecord.Interrupted)).Inc()
	}
	jobs := make([]queue.Job, 0, len(queued))
	for _, b := range queued {
		s.log.Info("build queued again after a restart", "build", b.ID)
		jobs = append(jobs, s.job(b))
	}
	return s.q.Restore(jobs)
}

// Ready reports whether the service can take builds: the records answer,
// the workers are alive and it is not shutting down.
func (s *Service) Ready(ctx context.Context) error {
	if s.closing.Load() {
		return errors.New("build service is shutting down")
	}
	if !s.q.Alive() {
		return errors.New("build workers are not running")
	}
	if err := s.cfg.Records.Ping(ctx); err != nil {
		return fmt.Errorf("build records unavailable: %w", err)
	}
	return nil
}

// Shutdown stops taking builds, lets running ones finish for up to
// Config.ShutdownGrace (or until ctx ends), then cuts the rest and marks
// them interrupted. Queued builds stay queued: they run after a restart.
// Log streams end.
func (s *Service) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	grace, cancel := context.WithTimeout(ctx, s.cfg.ShutdownGrace)
	defer cancel()
	report := s.q.Shutdown(grace)
	var errs []error
	for _, id := range report.Cut {
		// The build's own run marks it interrupted; this catches a run
		// that could not.
		b, err := s.cfg.Records.Get(context.WithoutCancel(ctx), id)
		if err == nil && !b.State.Final() {
			_, err = s.cfg.Records.Transition(context.WithoutCancel(ctx), id, buildrecord.Interrupted, s.cfg.Now(), nil)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("marking build %s interrupted: %w", id, err))
		}
		s.log.Warn("build cut by shutdown: marked interrupted", "build", id)
	}
	for _, id := range report.Dropped {
		s.log.Info("build left queued at shutdown: it runs after a restart", "build", id)
	}
	s.hub.closeAll()
	return errors.Join(errs...)
}
