package service

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/kilnbuild/kiln/internal/buildrecord"
	"github.com/kilnbuild/kiln/internal/queue"
)

// Handler serves the API under /api/v1/. Every answer but a log's is
// JSON, errors included.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	route := func(method, path string, read bool, h func(http.ResponseWriter, *http.Request) error) {
		name := method + " " + path
		mux.Handle(method+" /api/v1"+path, s.m.timed(name, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			err := s.allow(r, read)
			if err == nil {
				err = h(w, r)
			}
			if err != nil {
				writeError(w, r, s.log, name, err)
			}
		})))
	}
	route("POST", "/builds", false, s.submit)
	route("GET", "/builds", true, s.list)
	route("GET", "/builds/{id}", true, s.getBuild)
	route("POST", "/builds/{id}/cancel", false, s.cancel)
	route("POST", "/builds/{id}/retry", false, s.retry)
	route("GET", "/builds/{id}/log", true, s.buildLog)
	route("POST", "/sources", false, s.uploadSource)

	// The mux's own 404 and 405 are text: answer them as JSON.
	for _, path := range []string{"/builds", "/builds/{id}", "/builds/{id}/cancel", "/builds/{id}/retry", "/builds/{id}/log", "/sources"} {
		mux.HandleFunc("/api/v1"+path, func(w http.ResponseWriter, r *http.Request) {
			writeError(w, r, s.log, path, errorf(http.StatusMethodNotAllowed, "%s is not allowed on %s", r.Method, r.URL.Path))
		})
	}
	mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, s.log, "", errorf(http.StatusNotFound, "no API route %s", r.URL.Path))
	})
	return mux
}

func (s *Service) getBuild(w http.ResponseWriter, r *http.Request) error {
	b, err := s.get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, b)
	return nil
}

// listBody is GET /builds's answer.
type listBody struct {
	Builds []*buildrecord.Build `json:"builds"`
	Next   string               `json:"next,omitempty"`
}

// MaxLimit is the most builds one page lists.
const MaxLimit = 500

// sourceKinds are the values of ?source=.
var sourceKinds = map[string]bool{"workspace": true, "upload": true, "git": true, "module": true}

func (s *Service) list(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilter(r.URL.Query())
	if err != nil {
		return err
	}
	page, err := s.cfg.Records.List(r.Context(), f)
	if err != nil {
		return fmt.Errorf("listing builds: %w", err)
	}
	body := listBody{Builds: page.Builds, Next: page.Next}
	if body.Builds == nil {
		body.Builds = []*buildrecord.Build{}
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

// parseFilter reads GET /builds's query; an unknown parameter is refused.
func parseFilter(q url.Values) (buildrecord.Filter, error) {
	var f buildrecord.Filter
	for key, vs := range q {
		if len(vs) != 1 {
			return f, errorf(http.StatusBadRequest, "query parameter %q given %d times", key, len(vs))
		}
		v := vs[0]
		switch key {
		case "state":
			f.State = buildrecord.State(v)
			if !f.State.Valid() {
				return f, errorf(http.StatusBadRequest, "state %q is not one of queued, running, succeeded, failed, cancelled, timed_out, interrupted", v)
			}
		case "package":
			f.Package = v
		case "source":
			if !sourceKinds[v] {
				return f, errorf(http.StatusBadRequest, "source %q is not one of workspace, upload, git, module", v)
			}
			f.SourceKind = v
		case "cursor":
			if !validID(v) {
				return f, errorf(http.StatusBadRequest, "cursor %q is not one this server gave", v)
			}
			f.Cursor = v
		case "limit":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > MaxLimit {
				return f, errorf(http.StatusBadRequest, "limit %q is not a number from 1 to %d", v, MaxLimit)
			}
			f.Limit = n
		default:
			return f, errorf(http.StatusBadRequest, "unknown query parameter %q: use state, package, source, cursor or limit", key)
		}
	}
	return f, nil
}

// cancel is POST /builds/{id}/cancel. A queued build is cancelled at once
// (200); a running one is told to stop (202) and ends cancelled soon.
func (s *Service) cancel(w http.ResponseWriter, r *http.Request) error {
	b, err := s.get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if b.State.Final() {
		return errorf(http.StatusConflict, "build %s is already %s", b.ID, b.State)
	}
	switch s.q.Cancel(b.ID) {
	case queue.Running:
		s.log.Info("build cancel requested", "build", b.ID)
		writeJSON(w, http.StatusAccepted, b)
		return nil
	case queue.Absent:
		if b.State != buildrecord.Queued {
			// It is between its last step and its record's end.
			writeJSON(w, http.StatusAccepted, b)
			return nil
		}
		// Queued but not in the queue: it was stored a moment ago, or
		// left queued by a shutdown. Its run, if any, finds it cancelled.
	}
	b, err = s.cfg.Records.Transition(r.Context(), b.ID, buildrecord.Cancelled, s.cfg.Now(), func(b *buildrecord.Build) {
		b.Error = &buildrecord.Error{Message: "build cancelled before it started"}
	})
	if errors.Is(err, buildrecord.ErrTransition) {
		return errorf(http.StatusConflict, "build %s ended before it could be cancelled", r.PathValue("id"))
	}
	if err != nil {
		return fmt.Errorf("cancelling build %s: %w", r.PathValue("id"), err)
	}
	s.log.Info("build cancelled while queued", "build", b.ID)
	s.m.observe(buildrecord.Cancelled, b.Phases)
	s.hub.finish(b.ID, buildrecord.Cancelled)
	writeJSON(w, http.StatusOK, b)
	return nil
}
