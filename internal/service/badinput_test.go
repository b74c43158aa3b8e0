package service

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// multipartBody builds a multipart body of (name, content) parts in order.
func multipartBody(t *testing.T, parts ...string) (string, io.Reader) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for i := 0; i+1 < len(parts); i += 2 {
		w, err := mw.CreateFormFile(parts[i], parts[i])
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, parts[i+1])
	}
	mw.Close()
	return mw.FormDataContentType(), &buf
}

const gz = "\x1f\x8b fake tar.gz"

// Every bad request is a 4xx with a JSON error, and nothing is created:
// no record, no upload, no source resolved, no build run.
func TestBadInput(t *testing.T) {
	big := `{"source": {"module": "x@v1"}, "packages": ["` + strings.Repeat("a", MaxJSON) + `"]}`
	type tc struct {
		name        string
		method      string
		path        string
		contentType string
		body        string
		multipart   []string
		hdr         []string
		remote      string // a client beyond loopback
		tokens      []string
		maxUpload   int64
		status      int
		code        string
	}
	post := "/api/v1/builds"
	cases := []tc{
		{name: "invalid JSON", body: `{"source": `, status: 400, code: "invalid_request"},
		{name: "not an object", body: `["./cmd/app"]`, status: 400, code: "invalid_request"},
		{name: "null", body: `null`, status: 400, code: "invalid_request"},
		{name: "empty body", body: ``, status: 400, code: "invalid_request"},
		{name: "data after the object", body: okRequest + ` {}`, status: 400, code: "invalid_request"},
		{name: "unknown build field", body: `{"source": {"module": "x@v1"}, "packages": ["./a"], "toolexec": "evil"}`, status: 400, code: "invalid_request"},
		{name: "unknown source field", body: `{"source": {"modul": "x@v1"}, "packages": ["./a"]}`, status: 400, code: "invalid_request"},
		{name: "no source", body: `{"packages": ["./a"]}`, status: 400, code: "invalid_request"},
		{name: "no packages", body: `{"source": {"module": "x@v1"}}`, status: 400, code: "invalid_request"},
		{name: "oversized body", body: big, status: 413, code: "too_large"},
		{name: "wrong content type", contentType: "text/plain", body: okRequest, status: 415, code: "unsupported_media_type"},
		{name: "timeout not a duration", body: `{"source": {"module": "x@v1"}, "packages": ["./a"], "timeout": "forever"}`, status: 400, code: "invalid_request"},
		{name: "timeout a number", body: `{"source": {"module": "x@v1"}, "packages": ["./a"], "timeout": 60}`, status: 400, code: "invalid_request"},
		{name: "timeout negative", body: `{"source": {"module": "x@v1"}, "packages": ["./a"], "timeout": "-1s"}`, status: 400, code: "invalid_request"},
		{name: "timeout above the server's", body: `{"source": {"module": "x@v1"}, "packages": ["./a"], "timeout": "31m"}`, status: 400, code: "invalid_request"},
		{name: "sign without a key", body: `{"source": {"module": "x@v1"}, "packages": ["./a"], "sign": true}`, status: 400, code: "invalid_request"},
		{name: "unknown platform", body: `{"source": {"module": "x@v1"}, "packages": ["./a"], "platforms": ["plan9/mips"]}`, status: 400, code: "invalid_request"},
		{name: "bad source", body: `{"source": {"module": "bad"}, "packages": ["./a"]}`, status: 400, code: "invalid_request"},
		{name: "empty source", body: `{"source": {}, "packages": ["./a"]}`, status: 400, code: "invalid_request"},
		{name: "bad token", body: okRequest, hdr: []string{"Authorization", "Bearer wrong"}, tokens: []string{"right"}, status: 401, code: "unauthorized"},
		{name: "no token", body: okRequest, tokens: []string{"right"}, status: 401, code: "unauthorized"},
		{name: "token of another scheme", body: okRequest, hdr: []string{"Authorization", "Basic cmlnaHQ="}, tokens: []string{"right"}, status: 401, code: "unauthorized"},
		{name: "beyond loopback without tokens", body: okRequest, remote: "192.0.2.7:4000", status: 403, code: "forbidden"},
		{name: "multipart: archive first", multipart: []string{"archive", gz, "request", `{"source": {}, "packages": ["./a"]}`}, status: 400, code: "invalid_request"},
		{name: "multipart: no archive", multipart: []string{"request", `{"source": {}, "packages": ["./a"]}`}, status: 400, code: "invalid_request"},
		{name: "multipart: a source too", multipart: []string{"request", okRequest, "archive", gz}, status: 400, code: "invalid_request"},
		{name: "multipart: bad request part", multipart: []string{"request", `{"source": {}, "packages": ["./a"], "x": 1}`, "archive", gz}, status: 400, code: "invalid_request"},
		{name: "multipart: archive too large", multipart: []string{"request", `{"source": {}, "packages": ["./a"]}`, "archive", gz + strings.Repeat("x", 100)}, maxUpload: 64, status: 413, code: "too_large"},
		{name: "multipart: not gzip", multipart: []string{"request", `{"source": {}, "packages": ["./a"]}`, "archive", "plain"}, status: 400, code: "invalid_request"},
		{name: "toolexec in a workspace's .ko.yaml", body: `{"source": {"workspace": "toolexec"}, "packages": ["./a"]}`, status: 400, code: "invalid_request"},
		{name: "multipart: toolexec in the archive's .ko.yaml", multipart: []string{"request", `{"source": {}, "packages": ["./a"]}`, "archive", gz + " toolexec"}, status: 400, code: "invalid_request"},
		{name: "multipart: garbage", contentType: "multipart/form-data; boundary=zz", body: "--zz\r\nnot a part", status: 400, code: "invalid_request"},
		{name: "upload too large", path: "/api/v1/sources", body: gz + strings.Repeat("x", 100), maxUpload: 64, status: 413, code: "too_large"},
		{name: "upload not gzip", path: "/api/v1/sources", body: "plain", status: 400, code: "invalid_request"},
		{name: "list: bad state", method: "GET", path: "/api/v1/builds?state=done", status: 400, code: "invalid_request"},
		{name: "list: bad source kind", method: "GET", path: "/api/v1/builds?source=svn", status: 400, code: "invalid_request"},
		{name: "list: limit too big", method: "GET", path: "/api/v1/builds?limit=501", status: 400, code: "invalid_request"},
		{name: "list: limit not a number", method: "GET", path: "/api/v1/builds?limit=ten", status: 400, code: "invalid_request"},
		{name: "list: bad cursor", method: "GET", path: "/api/v1/builds?cursor=%2F..%2F", status: 400, code: "invalid_request"},
		{name: "list: unknown parameter", method: "GET", path: "/api/v1/builds?owner=me", status: 400, code: "invalid_request"},
		{name: "list: parameter twice", method: "GET", path: "/api/v1/builds?limit=1&limit=2", status: 400, code: "invalid_request"},
		{name: "unknown build", method: "GET", path: "/api/v1/builds/b999999", status: 404, code: "not_found"},
		{name: "malformed build id", method: "GET", path: "/api/v1/builds/a%20b", status: 404, code: "not_found"},
		{name: "cancel unknown", path: "/api/v1/builds/b999999/cancel", status: 404, code: "not_found"},
		{name: "retry unknown", path: "/api/v1/builds/b999999/retry", status: 404, code: "not_found"},
		{name: "log unknown", method: "GET", path: "/api/v1/builds/b999999/log", status: 404, code: "not_found"},
		{name: "log: bad Last-Event-ID", method: "GET", path: "/api/v1/builds/b999999/log", hdr: []string{"Accept", "text/event-stream", "Last-Event-ID", "x"}, status: 400, code: "invalid_request"},
		{name: "method not allowed", method: "DELETE", path: "/api/v1/builds", status: 405, code: "method_not_allowed"},
		{name: "unknown route", method: "GET", path: "/api/v1/things", status: 404, code: "not_found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, func(e *env, cfg *Config) {
				cfg.Tokens = c.tokens
				if c.maxUpload > 0 {
					cfg.MaxUpload = c.maxUpload
				}
			})
			method, path, ct, body := c.method, c.path, c.contentType, io.Reader(strings.NewReader(c.body))
			if method == "" {
				method = "POST"
			}
			if path == "" {
				path = post
			}
			if ct == "" && method == "POST" {
				ct = "application/json"
			}
			if c.multipart != nil {
				ct, body = multipartBody(t, c.multipart...)
			}
			var resp *http.Response
			var b []byte
			if c.remote != "" {
				req := httptest.NewRequest(method, path, body)
				req.RemoteAddr = c.remote
				req.Header.Set("Content-Type", ct)
				rr := httptest.NewRecorder()
				e.svc.Handler().ServeHTTP(rr, req)
				resp, b = rr.Result(), rr.Body.Bytes()
			} else {
				resp, b = e.do(method, path, ct, body, c.hdr...)
			}
			if resp.StatusCode != c.status {
				t.Errorf("status %d, want %d: %s", resp.StatusCode, c.status, b)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			got := decodeError(t, b)
			if got.Error.Code != c.code {
				t.Errorf("code %q, want %q (%s)", got.Error.Code, c.code, got.Error.Message)
			}
			if strings.Contains(got.Error.Message, "/srv/") || strings.Contains(got.Error.Message, e.tmp) {
				t.Errorf("the message shows a server path: %s", got.Error.Message)
			}
			if n := e.rec.count(); n != 0 {
				t.Errorf("%d records created", n)
			}
			if n := e.run.count(); n != 0 {
				t.Errorf("%d builds run", n)
			}
			if _, uploads := e.src.counts(); uploads != 0 {
				t.Errorf("%d uploads saved", uploads)
			}
		})
	}
}

// An internal error reaches the client as "internal error" alone; the
// detail goes to the server's log.
func TestInternalErrorsDoNotLeak(t *testing.T) {
	e := newEnv(t, func(e *env, cfg *Config) { cfg.MaxQueue = 1 })
	e.rec.mu.Lock()
	e.rec.failAll = &pathError{"open /var/lib/kiln/records.db: permission denied"}
	e.rec.mu.Unlock()
	resp, b := e.do("POST", "/api/v1/builds", "application/json", strings.NewReader(okRequest))
	if resp.StatusCode != 500 {
		t.Fatalf("status %d, want 500: %s", resp.StatusCode, b)
	}
	if got := decodeError(t, b); got.Error.Code != "internal" || got.Error.Message != "internal error" {
		t.Errorf("error %+v, want internal / internal error", got.Error)
	}
	if !strings.Contains(e.logs.String(), "/var/lib/kiln/records.db") {
		t.Errorf("the server's log lacks the internal error:\n%s", e.logs.String())
	}
	// The place held in the queue (one) was given back.
	e.rec.mu.Lock()
	e.rec.failAll = nil
	e.rec.mu.Unlock()
	e.mustSubmit(okRequest)
}

type pathError struct{ s string }

func (p *pathError) Error() string { return p.s }

// A refused multipart submission removes the archive it stored, but not
// one that was stored before it (by POST /sources, for another build).
func TestRefusedUploadKeepsEarlierOne(t *testing.T) {
	e := newEnv(t, nil)
	archive := gz + " toolexec"
	resp, b := e.do("POST", "/api/v1/sources", "application/gzip", strings.NewReader(archive))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /sources: %d %s", resp.StatusCode, b)
	}
	ct, body := multipartBody(t, "request", `{"source": {}, "packages": ["./a"]}`, "archive", archive)
	if resp, b := e.do("POST", "/api/v1/builds", ct, body); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("POST /builds: %d %s, want 400", resp.StatusCode, b)
	}
	if _, uploads := e.src.counts(); uploads != 1 {
		t.Errorf("%d uploads kept, want the earlier one", uploads)
	}
}
