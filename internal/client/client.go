package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/kilnbuild/kiln/internal/buildrecord"
)

// Client calls a build service's /api/v1.
type Client struct {
	URL   string // the service, e.g. http://127.0.0.1:8080
	Token string // bearer token; "" sends none
	HTTP  *http.Client
}

// APIError is an answer of the service that is not a success.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("build service: %s (%d %s)", e.Message, e.Status, e.Code)
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

func (c *Client) newRequest(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	u, err := url.JoinPath(c.URL, "/api/v1", path)
	if err != nil {
		return nil, fmt.Errorf("--remote %q is not a URL: %w", c.URL, err)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	return req, nil
}

// do sends req and decodes a JSON answer into out (when not nil).
func (c *Client) do(req *http.Request, out any) error {
	res, err := c.http().Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode/100 != 2 {
		return readError(res)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 16<<20)).Decode(out); err != nil {
		return fmt.Errorf("build service: reading its answer: %w", err)
	}
	return nil
}

func readError(res *http.Response) error {
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	data, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	e := &APIError{Status: res.StatusCode}
	if json.Unmarshal(data, &body) == nil && body.Error.Message != "" {
		e.Code, e.Message = body.Error.Code, body.Error.Message
	} else {
		e.Code, e.Message = "http", strings.TrimSpace(http.StatusText(res.StatusCode))
	}
	return e
}

// Submit sends a build request (a JSON object: the build's fields, and no
// source) with archive, a tar.gz of the source, as one multipart body.
func (c *Client) Submit(ctx context.Context, request any, archive io.Reader) (*buildrecord.Build, error) {
	raw, err := json.Marshal(request)
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		pw.CloseWithError(writeParts(mw, raw, archive))
	}()
	req, err := c.newRequest(ctx, http.MethodPost, "builds", pr)
	if err != nil {
		pr.Close()
		return nil, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	var b buildrecord.Build
	if err := c.do(req, &b); err != nil {
		pr.CloseWithError(err)
		return nil, err
	}
	return &b, nil
}

func writeParts(mw *multipart.Writer, raw []byte, archive io.Reader) error {
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="request"`)
	h.Set("Content-Type", "application/json")
	w, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	if _, err := w.Write(raw); err != nil {
		return err
	}
	h = textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="archive"; filename="source.tar.gz"`)
	h.Set("Content-Type", "application/gzip")
	if w, err = mw.CreatePart(h); err != nil {
		return err
	}
	if _, err := io.Copy(w, archive); err != nil {
		return err
	}
	return mw.Close()
}

// Get returns a build's record.
func (c *Client) Get(ctx context.Context, id string) (*buildrecord.Build, error) {
	req, err := c.newRequest(ctx, http.MethodGet, "builds/"+url.PathEscape(id), nil)
	if err != nil {
		return nil, err
	}
	var b buildrecord.Build
	return &b, c.do(req, &b)
}

// Cancel cancels a queued or running build.
func (c *Client) Cancel(ctx context.Context, id string) error {
	req, err := c.newRequest(ctx, http.MethodPost, "builds/"+url.PathEscape(id)+"/cancel", nil)
	if err != nil {
		return err
	}
	return c.do(req, nil)
}

// Follow copies a build's log to w as it is written, until the build
// ends, and returns its final record. A dropped stream is picked up where
// it stopped (Last-Event-ID), a few times.
func (c *Client) Follow(ctx context.Context, id string, w io.Writer) (*buildrecord.Build, error) {
	var last int64
	for attempt := 0; ; attempt++ {
		ended, err := c.stream(ctx, id, w, &last)
		if ended {
			return c.Get(ctx, id)
		}
		var apiErr *APIError
		if ctx.Err() != nil || errors.As(err, &apiErr) || attempt == 5 {
			if err == nil {
				err = errors.New("the log stream ended before the build did")
			}
			return nil, fmt.Errorf("following build %s: %w", id, err)
		}
		select { // back off before picking the stream up again
		case <-time.After(time.Duration(attempt+1) * 200 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// stream reads one server-sent-events stream of the log, after line
// *last; ended is true once the "end" event came.
func (c *Client) stream(ctx context.Context, id string, w io.Writer, last *int64) (ended bool, err error) {
	req, err := c.newRequest(ctx, http.MethodGet, "builds/"+url.PathEscape(id)+"/log", nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if *last > 0 {
		req.Header.Set("Last-Event-ID", fmt.Sprint(*last))
	}
	res, err := c.http().Do(req)
	if err != nil {
		return false, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return false, readError(res)
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var event string
	var seq int64
	var data bytes.Buffer
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if event == "end" {
				return true, nil
			}
			if data.Len() > 0 || seq > 0 {
				data.WriteByte('\n')
				if _, err := w.Write(data.Bytes()); err != nil {
					return false, err
				}
				if seq > 0 {
					*last = seq
				}
			}
			event, seq = "", 0
			data.Reset()
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "id:"):
			fmt.Sscan(strings.TrimSpace(strings.TrimPrefix(line, "id:")), &seq)
		case strings.HasPrefix(line, "data:"):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	return false, sc.Err()
}
