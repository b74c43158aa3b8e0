package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"

	"github.com/kilnbuild/kiln/internal/buildrecord"
	"github.com/kilnbuild/kiln/internal/oneline"
	"github.com/kilnbuild/kiln/internal/queue"
	"github.com/kilnbuild/kiln/internal/source"
)

// retryAfter is the Retry-After of a full queue, in seconds: about the
// time a small build takes.
const retryAfter = 30

func oneLine(err error) string { return oneline.First(err.Error()) }

// submit is POST /builds: a JSON request, or multipart with a "request"
// JSON part and then an "archive" tar.gz part. The request is checked
// whole before the archive is read, and a place in the queue is held
// before anything is stored, so that a refused request leaves nothing.
func (s *Service) submit(w http.ResponseWriter, r *http.Request) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		mt = ""
	}
	switch mt {
	case "application/json":
		r.Body = http.MaxBytesReader(w, r.Body, MaxJSON)
		raw, err := readLimited(r.Body, MaxJSON, "the request body")
		if err != nil {
			return err
		}
		return s.accept(w, r, raw, nil)
	case "multipart/form-data":
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxUpload+MaxJSON)
		mr, err := r.MultipartReader()
		if err != nil {
			return errorf(http.StatusBadRequest, "invalid multipart body: %s", err)
		}
		part, err := nextPart(mr, "request")
		if err != nil {
			return err
		}
		raw, err := readLimited(part, MaxJSON, "the request part")
		if err != nil {
			return err
		}
		return s.accept(w, r, raw, mr)
	}
	return errorf(http.StatusUnsupportedMediaType, "send the build request as application/json, or as multipart/form-data with a request part and then an archive part")
}

func nextPart(mr *multipart.Reader, name string) (*multipart.Part, error) {
	part, err := mr.NextPart()
	if errors.Is(err, io.EOF) {
		return nil, errorf(http.StatusBadRequest, "the multipart body has no %q part", name)
	}
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "invalid multipart body: %s", err)
	}
	if part.FormName() != name {
		return nil, errorf(http.StatusBadRequest, "multipart part %q where %q was expected: send the request part, then the archive part", part.FormName(), name)
	}
	return part, nil
}

// accept checks a request, holds a place in the queue, saves the archive
// of a multipart request (mr), resolves the source, and stores and queues
// the build.
func (s *Service) accept(w http.ResponseWriter, r *http.Request, raw []byte, mr *multipart.Reader) (err error) {
	req, err := parseRequest(raw, s.cfg.BuildTimeout)
	if err != nil {
		return err
	}
	if mr != nil && req.Source != (source.Spec{Subdir: req.Source.Subdir}) {
		return errorf(http.StatusBadRequest, "a request with an archive part takes no source but an optional subdir")
	}
	packages, err := s.cfg.Runner.Check(req.Build)
	if errors.Is(err, ErrInvalid) {
		return errorf(http.StatusBadRequest, "%s", oneLine(err))
	}
	if err != nil {
		return fmt.Errorf("checking a build request: %w", err)
	}
	ticket, err := s.reserve(w)
	if err != nil {
		return err
	}
	defer ticket.Release()
	if mr != nil {
		part, perr := nextPart(mr, "archive")
		if perr != nil {
			return perr
		}
		id, created, serr := s.save(r, part)
		if serr != nil {
			return serr
		}
		req.Source.Upload = id
		if created {
			// A refusal from here on leaves nothing on disk.
			defer func() {
				if err != nil { // accept's result
					s.cfg.Sources.DeleteUpload(id)
				}
			}()
		}
		if _, err := mr.NextPart(); !errors.Is(err, io.EOF) {
			return errorf(http.StatusBadRequest, "the multipart body has parts after the archive: send only request and archive")
		}
	}
	src, err := s.resolve(r.Context(), &req)
	if err != nil {
		return err
	}
	stored, err := req.encode()
	if err != nil {
		return err
	}
	b := &buildrecord.Build{Request: stored, Packages: packages, Source: src}
	return s.enqueue(w, r, ticket, b)
}

// resolve pins the request's source and, when its tree is known now
// (workspaces and uploads), checks its .ko.yaml against the build rule,
// so that a -toolexec there is a 400 and not a failed build. Git and
// module sources are checked when the build has fetched them.
func (s *Service) resolve(ctx context.Context, req *request) (buildrecord.Source, error) {
	src, err := s.cfg.Sources.Resolve(ctx, req.Source)
	if errors.Is(err, source.ErrInvalid) {
		return src, errorf(http.StatusBadRequest, "%s", oneLine(err))
	}
	if err != nil {
		return src, fmt.Errorf("resolving a source: %w", err)
	}
	cfg, err := s.cfg.Sources.Config(ctx, src)
	if errors.Is(err, source.ErrInvalid) {
		return src, errorf(http.StatusBadRequest, "%s", oneLine(err))
	}
	if err != nil {
		return src, fmt.Errorf("reading a source's config: %w", err)
	}
	if cfg == nil {
		return src, nil
	}
	err = s.cfg.Runner.CheckConfig(req.Build, *cfg)
	if errors.Is(err, ErrInvalid) {
		return src, errorf(http.StatusBadRequest, "%s", oneLine(err))
	}
	if err != nil {
		return src, fmt.Errorf("checking a source's config: %w", err)
	}
	return src, nil
}

// reserve holds a place in the queue, or answers why not.
func (s *Service) reserve(w http.ResponseWriter) (*queue.Ticket, error) {
	if s.closing.Load() {
		return nil, errorf(http.StatusServiceUnavailable, "the build service is shutting down: try again later")
	}
	t, err := s.q.Reserve()
	switch {
	case errors.Is(err, queue.ErrFull):
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
		return nil, errorf(http.StatusTooManyRequests, "the build queue is full: try again in %d seconds", retryAfter)
	case err != nil:
		return nil, errorf(http.StatusServiceUnavailable, "the build service is shutting down: try again later")
	}
	return t, nil
}

// enqueue stores b and puts it in the ticket's place, answering 202 with
// the record.
func (s *Service) enqueue(w http.ResponseWriter, r *http.Request, t *queue.Ticket, b *buildrecord.Build) error {
	b.ServerVersion = s.cfg.Version
	if err := s.cfg.Records.Create(r.Context(), b); err != nil {
		return fmt.Errorf("creating a build record: %w", err)
	}
	s.log.Info("build queued", "build", b.ID, "source", b.Source.Kind, "retryOf", b.RetryOf)
	if err := t.Submit(s.job(b)); err != nil {
		// Shutdown came between: the record stays queued and runs
		// after a restart.
		s.log.Info("build left queued at shutdown: it runs after a restart", "build", b.ID)
	}
	writeJSON(w, http.StatusAccepted, b)
	return nil
}

// uploadSource is POST /sources: a tar.gz body, saved for a later build.
func (s *Service) uploadSource(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxUpload+1)
	id, _, err := s.save(r, r.Body)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]string{"upload": id})
	return nil
}

// retry is POST /builds/{id}/retry: a new build of a finished one's
// request and resolved source, linked to it.
func (s *Service) retry(w http.ResponseWriter, r *http.Request) error {
	old, err := s.get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if !old.State.Final() {
		return errorf(http.StatusConflict, "build %s is %s: only a finished build can be retried", old.ID, old.State)
	}
	if _, err := parseRequest(old.Request, s.cfg.BuildTimeout); err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			return err
		}
		return errorf(http.StatusConflict, "build %s cannot run on this server again: %s", old.ID, ae.message)
	}
	ticket, err := s.reserve(w)
	if err != nil {
		return err
	}
	defer ticket.Release()
	b := &buildrecord.Build{Request: old.Request, Packages: old.Packages, Source: old.Source, RetryOf: old.ID}
	return s.enqueue(w, r, ticket, b)
}

// get reads one record; a malformed or unknown ID is not found.
func (s *Service) get(ctx context.Context, id string) (*buildrecord.Build, error) {
	if !validID(id) {
		return nil, errorf(http.StatusNotFound, "no build %q", id)
	}
	b, err := s.cfg.Records.Get(ctx, id)
	if errors.Is(err, buildrecord.ErrNotFound) {
		return nil, errorf(http.StatusNotFound, "no build %q", id)
	}
	if err != nil {
		return nil, fmt.Errorf("reading build %s: %w", id, err)
	}
	return b, nil
}

func validID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range id {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
