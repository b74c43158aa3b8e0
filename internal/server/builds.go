package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/kilnbuild/kiln/internal/buildrecord"
	"github.com/kilnbuild/kiln/internal/gobuild"
	"github.com/kilnbuild/kiln/internal/imageref"
	"github.com/kilnbuild/kiln/internal/oneline"
	"github.com/kilnbuild/kiln/internal/pipeline"
	"github.com/kilnbuild/kiln/internal/publish"
	"github.com/kilnbuild/kiln/internal/request"
	"github.com/kilnbuild/kiln/internal/service"
	"github.com/kilnbuild/kiln/internal/sign"
)

// builder is the service's Runner: kiln build's request, confined to the
// fetched source, published to the server's own registry (or the
// request's output repository) and signed with the server's key.
type builder struct {
	env      []string // the Go environment of every build
	registry string   // the name of the server's own registry, e.g. 127.0.0.1:8080
	// local reaches the server's own registry in process.
	local    http.RoundTripper
	key      request.Key // Path "" when the server has no key
	cacheDir string
	version  string
	// keepBinaries and binaryGrace bound kiln's binary cache under
	// cacheDir, pruned after each build (pipeline.CacheBound); 0 means
	// the default.
	keepBinaries int
	binaryGrace  time.Duration
}

// buildFields are a request's build fields: kiln build's, and the
// repository to push to.
type buildFields struct {
	request.Build
	// Output is a registry repository; "" means the server's own
	// registry.
	Output string `json:"output,omitempty"`
}

func (b *builder) decode(raw json.RawMessage) (buildFields, error) {
	var f buildFields
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return f, fmt.Errorf("%w: %s", service.ErrInvalid, oneline.First(err.Error()))
	}
	return f, nil
}

func (b *builder) Check(raw json.RawMessage) ([]string, error) {
	f, err := b.decode(raw)
	if err != nil {
		return nil, err
	}
	if err := f.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %s", service.ErrInvalid, err.Error())
	}
	if f.Sign && b.key.Path == "" {
		return nil, fmt.Errorf("%w: sign: this server has no signing key (start it with --signing-key)", service.ErrInvalid)
	}
	if _, err := b.output(f.Output); err != nil {
		return nil, err
	}
	return f.Packages, nil
}

// output is the repository to push to.
func (b *builder) output(out string) (string, error) {
	if out == "" {
		return b.registry, nil
	}
	// A path such as ./out parses as a repository on a host named ".":
	// it is a directory, which the service never writes to.
	if r, err := imageref.Parse(out, ""); err != nil || r.Kind != imageref.Registry || strings.HasPrefix(out, ".") || strings.HasPrefix(out, "/") {
		return "", fmt.Errorf("%w: output %q: give a registry repository, e.g. registry.example/team", service.ErrInvalid, out)
	}
	if _, err := name.NewRepository(out); err != nil {
		return "", fmt.Errorf("%w: output %q: %s", service.ErrInvalid, out, oneline.First(err.Error()))
	}
	return out, nil
}

func (b *builder) Run(ctx context.Context, raw json.RawMessage, dir string, log io.Writer) ([]buildrecord.Result, buildrecord.Phases, error) {
	var phases buildrecord.Phases
	f, err := b.decode(raw)
	if err != nil {
		return nil, phases, err
	}
	repo, err := b.output(f.Output)
	if err != nil {
		return nil, phases, err
	}
	var tr http.RoundTripper // the default, for other registries
	var pub publish.Publisher = &publish.ToRegistry{Repo: repo, Jobs: f.Jobs}
	if repo == b.registry || strings.HasPrefix(repo, b.registry+"/") {
		tr = b.local
		pub = ownRegistry{&publish.ToRegistry{Repo: repo, Transport: tr, Jobs: f.Jobs}}
	}
	env := request.Env{
		Dir: dir, Env: b.env, Confined: true,
		Publisher:  pub,
		Repo:       repo,
		Signatures: &sign.RegistryStore{Transport: tr},
		Key:        b.key,
		CacheDir:   b.cacheDir, Progress: log, KilnVersion: b.version,
		Caches: pipeline.CacheBound{Keep: b.keepBinaries, Grace: b.binaryGrace},
		// A cancelled build stops its compiler too.
		Builder: &gobuild.Builder{Env: b.env, Runner: groupRunner{}},
	}
	outcomes, err := request.Run(ctx, env, f.Build)
	if err != nil {
		if errors.Is(err, request.ErrInvalid) {
			err = fmt.Errorf("%w: %s", service.ErrInvalid, err.Error())
		}
		return nil, phases, err
	}
	results := make([]buildrecord.Result, len(outcomes))
	for i, o := range outcomes {
		r := buildrecord.Result{ImportPath: o.ImportPath, Ref: o.Ref, Digest: o.Digest}
		for _, img := range o.Images {
			r.Images = append(r.Images, buildrecord.Image{Platform: img.Platform, Digest: img.Digest, Bytes: img.ImageBytes})
		}
		phases.Compile += buildrecord.Duration(o.Phases.Compile)
		phases.Layer += buildrecord.Duration(o.Phases.Layer)
		phases.Push += buildrecord.Duration(o.Phases.Push)
		for _, a := range o.Attachments {
			if r.Signature == "" {
				r.Signature = a.Signature
			}
			r.Attestations = append(r.Attestations, a.Attestations)
		}
		phases.Sign += buildrecord.Duration(o.Signing)
		results[i] = r
	}
	return results, phases, nil
}

// ownRegistry publishes to the server's own registry, whose pushes are
// always allowed (anonymous on loopback, else the service presents a
// token of its own), and whose
// repository may be the bare host: images are named HOST/NAME.
type ownRegistry struct{ *publish.ToRegistry }

func (ownRegistry) Check(context.Context) error { return nil }

// inProcess is a RoundTripper to a handler in this process: the server's
// builds push to its own registry without a network round trip, as a
// loopback client that presents the server's own token.
type inProcess struct {
	h     http.Handler
	token string
}

func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.RemoteAddr = "127.0.0.1:1"
	r.RequestURI = r.URL.RequestURI()
	if t.token != "" {
		r.Header.Set("Authorization", "Bearer "+t.token)
	}
	if r.Body == nil {
		r.Body = http.NoBody
	}
	w := &recorder{header: http.Header{}}
	t.h.ServeHTTP(w, r)
	if req.Body != nil {
		req.Body.Close()
	}
	if w.status == 0 {
		w.status = http.StatusOK
	}
	length := int64(w.body.Len())
	if n, err := strconv.ParseInt(w.header.Get("Content-Length"), 10, 64); err == nil && req.Method == http.MethodHead {
		length = n // a HEAD's size is its header's
	}
	return &http.Response{
		Status: fmt.Sprintf("%d %s", w.status, http.StatusText(w.status)), StatusCode: w.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: w.header, Body: io.NopCloser(&w.body), ContentLength: length, Request: req,
	}, nil
}

// recorder is the ResponseWriter of inProcess: registry answers to a
// push are small, so the body is held in memory.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *recorder) Header() http.Header { return w.header }

func (w *recorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *recorder) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(p)
}
