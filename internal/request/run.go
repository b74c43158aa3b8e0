package request

import (
	"context"
	"errors"
	"io"
	"os"
	"time"

	"github.com/kilnbuild/kiln/internal/attest"
	"github.com/kilnbuild/kiln/internal/delve"
	"github.com/kilnbuild/kiln/internal/gobuild"
	"github.com/kilnbuild/kiln/internal/pipeline"
	"github.com/kilnbuild/kiln/internal/platform"
)

// Outcome is one package's build: the published result, and when the
// request signed, where its signatures and attestations are and how long
// signing took.
type Outcome struct {
	pipeline.Result
	// Attachments lists, per manifest signed, where its signature and
	// attestations are; nil when the request did not sign.
	Attachments []attest.Attachment `json:"attachments,omitempty"`
	// AlreadySigned is true when the image carried a signature and both
	// attestations by this key already, and was not signed again.
	AlreadySigned bool `json:"alreadySigned,omitempty"`
	// Signing is the time spent signing and attesting this package.
	Signing time.Duration `json:"signingNanos,omitempty"`
}

// ErrNoPublisher means the caller gave no destination.
var ErrNoPublisher = errors.New("internal error: a build request was run without a destination (Env.Publisher)")

// Run checks b, then builds and publishes its packages (signing them when
// b or the config asks for it) and returns one Outcome per package in the
// order given. Nothing is published unless every package builds and the
// signing key loads; every bad input is an error before the first compile.
func Run(ctx context.Context, env Env, b Build) ([]Outcome, error) {
	if err := b.Validate(); err != nil {
		return nil, err
	}
	if env.Publisher == nil {
		return nil, ErrNoPublisher
	}
	cfg, err := env.config()
	if err != nil {
		return nil, err
	}
	if env.Confined {
		if err := confine(env.Dir, cfg, b); err != nil {
			return nil, err
		}
	}
	if b.Base != "" {
		c := *cfg
		c.DefaultBaseImage, c.BaseImageOverrides = b.Base, nil
		cfg = &c
	}
	if b.Debug {
		b.DisableOptimizations = true // Delve needs it, as in ko
	}
	cfg = b.applyOverrides(cfg)
	spec, _ := platform.Parse(b.Platforms) // checked by Validate
	compress, _ := b.compression()         // checked by Validate
	if env.Progress == nil {
		env.Progress = io.Discard
	}
	if env.Builder == nil {
		env.Builder = &gobuild.Builder{Env: env.Env}
	}
	s, err := newSigning(env, b, cfg)
	if err != nil {
		return nil, err
	}
	sw, err := newSBOMWriter(env, b)
	if err != nil {
		return nil, err
	}
	opts := pipeline.Options{
		Dir:       env.Dir,
		Env:       env.Env,
		Config:    cfg,
		Platforms: spec,
		Jobs:      b.Jobs,
		Compress:  compress,
		Created:   env.Created,
		Naming:    b.naming(env.Repo),
		Tags:      b.tags(),
		Publisher: env.Publisher,
		Builder:   env.Builder,
		Progress:  env.Progress,
		CacheDir:  env.CacheDir,
		KoData:    env.KoData,
	}
	opts.Base.Transport, opts.Base.Engine = env.Transport, env.Engine
	if b.Debug {
		d := &delve.Builder{Go: env.Builder, CacheDir: env.CacheDir}
		if d.CacheDir == "" {
			if d.TempDir, err = os.MkdirTemp("", "kiln-delve-*"); err != nil {
				return nil, err
			}
			defer os.RemoveAll(d.TempDir)
		}
		opts.Debugger = d
	}
	var after []func(context.Context, pipeline.Result) error
	if sw != nil {
		after = append(after, sw.after)
	}
	if s != nil {
		opts.BeforePublish = s.before
		after = append(after, s.after)
	}
	opts.AfterPublish = chainAfter(after...)
	results, err := pipeline.Run(ctx, opts, b.Packages)
	if err != nil {
		return nil, err
	}
	out := make([]Outcome, len(results))
	for i, r := range results {
		out[i] = Outcome{Result: r}
		if s != nil {
			s.describe(&out[i])
		}
	}
	return out, nil
}

// Results are the pipeline's results of outcomes.
func Results(outcomes []Outcome) []pipeline.Result {
	rs := make([]pipeline.Result, len(outcomes))
	for i, o := range outcomes {
		rs[i] = o.Result
	}
	return rs
}
