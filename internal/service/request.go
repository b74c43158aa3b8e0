package service

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/kilnbuild/kiln/internal/source"
)

// request is a build request split into its parts: the source and the
// timeout are the service's, the rest (the build) is the Runner's.
type request struct {
	Source  source.Spec
	Timeout time.Duration
	Build   json.RawMessage
}

// parseRequest splits a JSON build request. Every error is the client's.
// A missing timeout is max; one above max is refused.
func parseRequest(raw []byte, max time.Duration) (request, error) {
	var fields map[string]json.RawMessage
	if err := decodeStrict(raw, &fields); err != nil {
		return request{}, err
	}
	if fields == nil {
		return request{}, errorf(http.StatusBadRequest, "the build request must be a JSON object")
	}
	req := request{Timeout: max}
	src, ok := fields["source"]
	if !ok {
		return request{}, errorf(http.StatusBadRequest, `the build request needs a "source"`)
	}
	if err := decodeStrict(src, &req.Source); err != nil {
		return request{}, fmt.Errorf("source: %w", err)
	}
	if t, ok := fields["timeout"]; ok {
		var s string
		if err := json.Unmarshal(t, &s); err != nil {
			return request{}, errorf(http.StatusBadRequest, `timeout must be a duration string such as "10m"`)
		}
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return request{}, errorf(http.StatusBadRequest, "timeout %q is not a positive duration such as \"10m\"", s)
		}
		if d > max {
			return request{}, errorf(http.StatusBadRequest, "timeout %s is above the server's limit of %s", d, max)
		}
		req.Timeout = d
	}
	delete(fields, "source")
	delete(fields, "timeout")
	build, err := json.Marshal(fields)
	if err != nil {
		return request{}, err
	}
	req.Build = build
	return req, nil
}

// encode is the request as stored on the record: what a retry runs again.
func (r request) encode() (json.RawMessage, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(r.Build, &fields); err != nil {
		return nil, err
	}
	src, err := json.Marshal(r.Source)
	if err != nil {
		return nil, err
	}
	timeout, _ := json.Marshal(r.Timeout.String())
	fields["source"], fields["timeout"] = src, timeout
	return json.Marshal(fields)
}

// decodeStrict decodes one JSON value with unknown fields refused and
// nothing after it.
func decodeStrict(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errorf(http.StatusBadRequest, "the request body is empty: send a JSON object")
		}
		return errorf(http.StatusBadRequest, "invalid JSON: %s", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errorf(http.StatusBadRequest, "invalid JSON: more data after the object")
	}
	return nil
}

// readLimited reads at most limit bytes of r, or fails as too large.
func readLimited(r io.Reader, limit int64, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errorf(http.StatusRequestEntityTooLarge, "%s is larger than %d bytes", what, limit)
		}
		return nil, errorf(http.StatusBadRequest, "reading %s: %s", what, err)
	}
	if int64(len(b)) > limit {
		return nil, errorf(http.StatusRequestEntityTooLarge, "%s is larger than %d bytes", what, limit)
	}
	return b, nil
}

// upload counts an archive's bytes as they are read and stops past the
// limit; it remembers why it stopped, so that an error that came through
// Sources.SaveUpload is classified by what happened, not by its text.
type upload struct {
	r        io.Reader
	n, limit int64
	tooLarge bool
	readErr  error
}

var errUploadTooLarge = errors.New("archive too large")

func (u *upload) Read(p []byte) (int, error) {
	if u.n > u.limit {
		u.tooLarge = true
		return 0, errUploadTooLarge
	}
	n, err := u.r.Read(p)
	u.n += int64(n)
	if u.n > u.limit {
		u.tooLarge = true
		return n, errUploadTooLarge
	}
	if err != nil && !errors.Is(err, io.EOF) {
		u.readErr = err
	}
	return n, err
}

// save stores an uploaded archive through Sources, answering the
// client's errors as such; created is false when it was stored already.
func (s *Service) save(r *http.Request, body io.Reader) (id string, created bool, err error) {
	u := &upload{r: body, limit: s.cfg.MaxUpload}
	id, created, err = s.cfg.Sources.SaveUpload(r.Context(), u)
	var mbe *http.MaxBytesError
	switch {
	case err == nil:
		return id, created, nil
	case u.tooLarge || errors.As(u.readErr, &mbe):
		return "", false, errorf(http.StatusRequestEntityTooLarge, "the archive is larger than the server's limit of %d bytes", s.cfg.MaxUpload)
	case u.readErr != nil:
		return "", false, errorf(http.StatusBadRequest, "reading the archive: %s", u.readErr)
	case errors.Is(err, source.ErrInvalid):
		return "", false, errorf(http.StatusBadRequest, "%s", oneLine(err))
	}
	return "", false, fmt.Errorf("saving an upload: %w", err)
}
