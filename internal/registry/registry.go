package registry

import (
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/kilnbuild/kiln/internal/store"
)

// Options configure a Registry.
type Options struct {
	Access Access
	Log    *slog.Logger // nil discards
	Limits Limits       // zero fields take DefaultLimits
	Clock  Clock        // nil is the real clock
}

// Registry serves a store over the OCI distribution API under /v2/. It
// runs a timer that drops idle upload sessions: Close stops it.
type Registry struct {
	st       *store.Repositories
	access   Access
	log      *slog.Logger
	limits   Limits
	clock    Clock
	auth     *authenticator
	mem      *store.MemoryBudget // upload bytes in memory
	sessions *sessions

	closing   chan struct{}
	swept     chan struct{} // closed when the timer stopped
	closeOnce sync.Once
}

var _ http.Handler = (*Registry)(nil)

// New returns a registry over st. Uploads left by an earlier process are
// unknowable (their state lived in memory) and are removed.
func New(st *store.Repositories, opts Options) (*Registry, error) {
	if err := opts.Access.Validate(); err != nil {
		return nil, err
	}
	if _, err := st.RemoveUploads(0); err != nil {
		return nil, err
	}
	lim := opts.Limits.withDefaults()
	r := &Registry{
		st: st, access: opts.Access, log: opts.Log, limits: lim, clock: opts.Clock,
		mem:     store.NewMemoryBudget(lim.UploadMemory),
		closing: make(chan struct{}), swept: make(chan struct{}),
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.clock == nil {
		r.clock = realClock{}
	}
	auth, err := newAuthenticator(opts.Access, lim, r.clock)
	if err != nil {
		return nil, err
	}
	r.auth = auth
	r.sessions = newSessions(lim, r.clock)
	go r.sweep(r.clock.Tick(max(lim.UploadTTL/4, time.Millisecond)))
	return r, nil
}

// route is what a /v2/ path asks for.
type route struct {
	kind string // "base", "catalog", "manifest", "blob", "upload", "tags", "referrers"
	name string // the repository
	ref  string // tag or digest, blob digest, or upload id
}

// parsePath splits a /v2/ path. Repository names contain slashes, so the
// path is read from its end: the last one or two segments say what it is.
func parsePath(p string) (route, bool) {
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		return route{}, p == "/v2"
	}
	if rest == "" {
		return route{kind: "base"}, true
	}
	if rest == "_catalog" {
		return route{kind: "catalog"}, true
	}
	if name, ok := strings.CutSuffix(rest, "/tags/list"); ok {
		return route{kind: "tags", name: name}, true
	}
	i := strings.LastIndex(rest, "/")
	if i < 0 {
		return route{}, false
	}
	head, last := rest[:i], rest[i+1:]
	for _, k := range []struct{ suffix, kind string }{
		{"/blobs/uploads", "upload"},
		{"/manifests", "manifest"},
		{"/blobs", "blob"},
		{"/referrers", "referrers"},
	} {
		if name, ok := strings.CutSuffix(head, k.suffix); ok && name != "" {
			return route{kind: k.kind, name: name, ref: last}, true
		}
	}
	return route{}, false
}

// ServeHTTP implements http.Handler.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	rt, ok := parsePath(req.URL.Path)
	if !ok {
		r.writeError(w, req, &apiError{Status: http.StatusNotFound, Code: "NAME_UNKNOWN", Message: "no such endpoint"})
		return
	}
	authed, err := r.auth.authenticate(req)
	if err != nil {
		r.writeError(w, req, err)
		return
	}
	write := req.Method != http.MethodGet && req.Method != http.MethodHead
	switch {
	case rt.kind == "base":
		// Clients learn from /v2/ whether to send credentials.
		if !authed && r.access.HasCredentials() {
			r.writeError(w, req, errUnauthorized("credentials required"))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("{}"))
		return
	case rt.kind == "catalog":
		if write {
			r.writeError(w, req, errUnsupported("the catalog is read-only"))
			return
		}
		r.catalog(w, req, authed)
		return
	case write && !r.access.canWrite(authed):
		if authed {
			r.writeError(w, req, errDenied("not allowed to push"))
		} else {
			r.writeError(w, req, errUnauthorized("pushing needs credentials"))
		}
		return
	case !r.access.canRead(authed, rt.name):
		r.writeError(w, req, errUnauthorized("repository "+rt.name+" is private: credentials required"))
		return
	}
	if err := store.ValidName(rt.name); err != nil {
		r.writeError(w, req, err)
		return
	}
	switch rt.kind + " " + req.Method {
	case "manifest GET", "manifest HEAD":
		r.getManifest(w, req, rt)
	case "manifest PUT":
		r.putManifest(w, req, rt)
	case "manifest DELETE":
		r.deleteManifest(w, req, rt)
	case "blob GET", "blob HEAD":
		r.getBlob(w, req, rt)
	case "blob DELETE":
		r.deleteBlob(w, req, rt)
	case "upload POST":
		r.startUpload(w, req, rt, authed)
	case "upload PATCH":
		r.patchUpload(w, req, rt)
	case "upload PUT":
		r.finishUpload(w, req, rt)
	case "upload GET":
		r.uploadStatus(w, req, rt)
	case "upload DELETE":
		r.cancelUpload(w, req, rt)
	case "tags GET":
		r.tags(w, req, rt)
	case "referrers GET":
		r.referrers(w, req, rt)
	default:
		r.writeError(w, req, errUnsupported(req.Method+" is not supported here"))
	}
}
