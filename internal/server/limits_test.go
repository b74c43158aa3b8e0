package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/kilnbuild/kiln/internal/testutil"
)

// limitsEnv is one server of TestLimits.
type limitsEnv struct {
	url, addr, data string
	clock           *testutil.Clock
}

// from is an HTTP client whose connections come from the loopback
// address ip (127.0.0.0/8 all reach the server), without keep-alive.
func from(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

func (e *limitsEnv) do(t *testing.T, c *http.Client, method, path string, hdr map[string]string, body []byte) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var we struct{ Errors []struct{ Code string } }
	json.NewDecoder(resp.Body).Decode(&we)
	code := ""
	if len(we.Errors) > 0 {
		code = we.Errors[0].Code
	}
	return resp, code
}

// want checks a response's status (and error code, when given).
func want(t *testing.T, what string, resp *http.Response, code string, status int, wantCode string) {
	t.Helper()
	if resp.StatusCode != status || (wantCode != "" && code != wantCode) {
		t.Fatalf("%s: %s %s, want %d %s", what, resp.Status, code, status, wantCode)
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// closedBy reads from c until the server closes it; a server that keeps it
// open fails the test after a minute.
func closedBy(t *testing.T, c net.Conn, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(time.Minute))
	_, err := io.Copy(io.Discard, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("%s: the server kept the connection open for a minute", what)
	}
}

// TestLimits: every resource a client can make the server hold is bounded,
// one row a limit, each on a server of its own with the limit set low.
func TestLimits(t *testing.T) {
	dir := t.TempDir()
	htpasswd := filepath.Join(dir, "htpasswd")
	var users strings.Builder
	for _, u := range []string{"alice", "bob"} {
		h, _ := bcrypt.GenerateFromPassword([]byte(u+"-pw"), bcrypt.MinCost)
		fmt.Fprintf(&users, "%s:%s\n", u, h)
	}
	os.WriteFile(htpasswd, []byte(users.String()), 0o600)
	local := from("127.0.0.1")
	for _, tc := range []struct {
		name string
		args []string
		test func(t *testing.T, e *limitsEnv)
	}{
		{"upload sessions in total", []string{"--max-uploads", "3"}, func(t *testing.T, e *limitsEnv) {
			var locs []string
			for i := range 3 {
				resp, _ := e.do(t, from(fmt.Sprintf("127.0.0.%d", i+1)), "POST", "/v2/a/blobs/uploads/", nil, nil)
				want(t, "session "+fmt.Sprint(i), resp, "", 202, "")
				locs = append(locs, resp.Header.Get("Location"))
			}
			resp, code := e.do(t, from("127.0.0.9"), "POST", "/v2/a/blobs/uploads/", nil, nil)
			want(t, "a fourth session", resp, code, 429, "TOOMANYREQUESTS")
			resp, _ = e.do(t, local, "DELETE", locs[0], nil, nil)
			want(t, "cancel", resp, "", 204, "")
			resp, _ = e.do(t, from("127.0.0.9"), "POST", "/v2/a/blobs/uploads/", nil, nil)
			want(t, "a session after one was cancelled", resp, "", 202, "")
			// A monolithic upload holds no session.
			blob := []byte("monolithic")
			resp, _ = e.do(t, local, "POST", "/v2/a/blobs/uploads/?digest="+sha(blob), nil, blob)
			want(t, "monolithic upload", resp, "", 201, "")
		}},
		{"upload sessions per client", []string{"--max-uploads-per-client", "2"}, func(t *testing.T, e *limitsEnv) {
			for i := range 2 {
				resp, _ := e.do(t, local, "POST", "/v2/a/blobs/uploads/", nil, nil)
				want(t, "session "+fmt.Sprint(i), resp, "", 202, "")
			}
			resp, code := e.do(t, local, "POST", "/v2/a/blobs/uploads/", nil, nil)
			want(t, "a third session of one client", resp, code, 429, "TOOMANYREQUESTS")
			resp, _ = e.do(t, from("127.0.0.2"), "POST", "/v2/a/blobs/uploads/", nil, nil)
			want(t, "another client", resp, "", 202, "")
		}},
		{"idle upload sessions expire on a timer", []string{"--upload-ttl", "1m", "--max-uploads", "1"}, func(t *testing.T, e *limitsEnv) {
			resp, _ := e.do(t, local, "POST", "/v2/a/blobs/uploads/", nil, nil)
			loc := resp.Header.Get("Location")
			resp, _ = e.do(t, local, "PATCH", loc, nil, bytes.Repeat([]byte("x"), 100<<10))
			want(t, "PATCH", resp, "", 202, "")
			e.clock.Advance(45 * time.Second)
			resp, _ = e.do(t, local, "GET", loc, nil, nil)
			want(t, "a session used 45 s ago", resp, "", 204, "")
			e.clock.Advance(45 * time.Second)
			resp, _ = e.do(t, local, "GET", loc, nil, nil)
			want(t, "a session idle 45 s", resp, "", 204, "")
			e.clock.Advance(61 * time.Second) // no request comes: the timer alone drops it
			resp, code := e.do(t, local, "GET", loc, nil, nil)
			want(t, "a session idle 61 s", resp, code, 404, "BLOB_UPLOAD_UNKNOWN")
			resp, _ = e.do(t, local, "POST", "/v2/a/blobs/uploads/", nil, nil)
			want(t, "a new session in the expired one's place", resp, "", 202, "")
		}},
		{"upload bytes in memory", []string{"--upload-memory", "512KiB"}, func(t *testing.T, e *limitsEnv) {
			// Four sessions of 200 KiB: the budget holds two, the
			// others are staged on disk, and all of them commit.
			var locs []string
			var blobs [][]byte
			for i := range 4 {
				resp, _ := e.do(t, local, "POST", "/v2/a/blobs/uploads/", nil, nil)
				loc := resp.Header.Get("Location")
				blob := bytes.Repeat([]byte{byte('a' + i)}, 200<<10)
				resp, _ = e.do(t, local, "PATCH", loc, nil, blob)
				want(t, "PATCH", resp, "", 202, "")
				locs, blobs = append(locs, loc), append(blobs, blob)
			}
			staged, _ := os.ReadDir(filepath.Join(e.data, "store", "uploads"))
			if len(staged) != 2 {
				t.Fatalf("%d uploads staged on disk, want 2 (the two beyond 512 KiB of memory)", len(staged))
			}
			for i, loc := range locs {
				resp, _ := e.do(t, local, "PUT", loc+"?digest="+sha(blobs[i]), nil, nil)
				want(t, "PUT", resp, "", 201, "")
			}
		}},
		{"blob size", []string{"--max-blob-size", "1KiB"}, func(t *testing.T, e *limitsEnv) {
			big, small := bytes.Repeat([]byte("b"), 1025), bytes.Repeat([]byte("s"), 1024)
			resp, code := e.do(t, local, "POST", "/v2/a/blobs/uploads/?digest="+sha(big), nil, big)
			want(t, "a monolithic upload of 1025 bytes", resp, code, 413, "SIZE_INVALID")
			resp, _ = e.do(t, local, "POST", "/v2/a/blobs/uploads/?digest="+sha(small), nil, small)
			want(t, "a monolithic upload of 1024 bytes", resp, "", 201, "")
			resp, _ = e.do(t, local, "POST", "/v2/a/blobs/uploads/", nil, nil)
			loc := resp.Header.Get("Location")
			resp, _ = e.do(t, local, "PATCH", loc, nil, small)
			want(t, "a chunk of 1024 bytes", resp, "", 202, "")
			resp, code = e.do(t, local, "PATCH", loc, nil, []byte("x"))
			want(t, "one byte more", resp, code, 413, "SIZE_INVALID")
		}},
		{"manifest size", nil, func(t *testing.T, e *limitsEnv) {
			huge := append([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[],"annotations":{"x":"`), bytes.Repeat([]byte("a"), 4<<20)...)
			huge = append(huge, `"}}`...)
			resp, code := e.do(t, local, "PUT", "/v2/a/manifests/big", map[string]string{"Content-Type": "application/vnd.oci.image.index.v1+json"}, huge)
			want(t, "a manifest over 4 MiB", resp, code, 413, "MANIFEST_INVALID")
		}},
		{"connections", []string{"--max-conns", "2"}, func(t *testing.T, e *limitsEnv) {
			// Two keep-alive connections that the server has accepted
			// (each had an answer) take both places.
			var held []net.Conn
			for range 2 {
				c, err := net.Dial("tcp", e.addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				held = append(held, c)
			}
			third, err := net.Dial("tcp", e.addr) // the kernel queues it
			if err != nil {
				t.Fatal(err)
			}
			defer third.Close()
			fmt.Fprintf(third, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
			br := bufio.NewReader(third)
			third.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			if _, err := br.Peek(1); err == nil {
				t.Fatal("a third connection was served while two were open")
			}
			held[0].Close()
			third.SetReadDeadline(time.Now().Add(time.Minute))
			resp, err := http.ReadResponse(br, nil)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("the third connection once a place was free: %v %v", resp, err)
			}
		}},
		{"a stalled body", []string{"--io-timeout", "300ms", "--min-rate", "0"}, func(t *testing.T, e *limitsEnv) {
			resp, _ := e.do(t, local, "POST", "/v2/a/blobs/uploads/", nil, nil)
			c, err := net.Dial("tcp", e.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			fmt.Fprintf(c, "PATCH %s HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nx", resp.Header.Get("Location"))
			closedBy(t, c, "a body stalled after one byte")
		}},
		{"a trickled body", []string{"--io-timeout", "500ms", "--min-rate", "1MiB"}, func(t *testing.T, e *limitsEnv) {
			resp, _ := e.do(t, local, "POST", "/v2/a/blobs/uploads/", nil, nil)
			c, err := net.Dial("tcp", e.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			fmt.Fprintf(c, "PATCH %s HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n", resp.Header.Get("Location"))
			// One byte every 50 ms never waits long enough for the
			// idle rule: the rate rule must end it.
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				tick := time.NewTicker(50 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tick.C:
						if _, err := c.Write([]byte("x")); err != nil {
							return
						}
					}
				}
			}()
			closedBy(t, c, "a body trickled a byte every 50 ms")
		}},
		{"a response nobody reads", []string{"--io-timeout", "300ms", "--min-rate", "0", "--max-conns", "1"}, func(t *testing.T, e *limitsEnv) {
			blob := bytes.Repeat([]byte("r"), 32<<20)
			resp, _ := e.do(t, local, "POST", "/v2/a/blobs/uploads/?digest="+sha(blob), nil, blob)
			want(t, "push", resp, "", 201, "")
			c, err := net.Dial("tcp", e.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.(*net.TCPConn).SetReadBuffer(4096)
			fmt.Fprintf(c, "GET /v2/a/blobs/%s HTTP/1.1\r\nHost: x\r\n\r\n", sha(blob))
			// The only connection place is taken by a client that never
			// reads: another client is served once the server gives up.
			patient := &http.Client{Timeout: time.Minute, Transport: &http.Transport{DisableKeepAlives: true}}
			resp, err = patient.Get(e.url + "/healthz")
			if err != nil {
				t.Fatalf("a client waiting behind one that never reads: %v", err)
			}
			resp.Body.Close()
		}},
		{"idle keep-alive connections", []string{"--idle-timeout", "200ms"}, func(t *testing.T, e *limitsEnv) {
			c, err := net.Dial("tcp", e.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			closedBy(t, c, "an idle keep-alive connection")
		}},
		{"failed logins", []string{"--htpasswd", htpasswd}, func(t *testing.T, e *limitsEnv) {
			basic := func(user, pass string) map[string]string {
				req, _ := http.NewRequest("GET", "/", nil)
				req.SetBasicAuth(user, pass)
				return map[string]string{"Authorization": req.Header.Get("Authorization")}
			}
			// Per client: five failures under five names, then even the
			// right password waits; another client does not.
			spray := from("127.0.0.3")
			for i := range 5 {
				resp, code := e.do(t, spray, "GET", "/v2/", basic(fmt.Sprintf("user%d", i), "guess"), nil)
				want(t, "a wrong password", resp, code, 401, "UNAUTHORIZED")
			}
			resp, code := e.do(t, spray, "GET", "/v2/", basic("alice", "alice-pw"), nil)
			want(t, "the sixth try from that client", resp, code, 429, "TOOMANYREQUESTS")
			if resp.Header.Get("Retry-After") != "1" {
				t.Fatalf("Retry-After %q, want 1", resp.Header.Get("Retry-After"))
			}
			resp, _ = e.do(t, from("127.0.0.4"), "GET", "/v2/", basic("alice", "alice-pw"), nil)
			want(t, "another client", resp, "", 200, "")
			// Per user: five failures from five clients, then bob waits
			// wherever he comes from, and the wait doubles.
			for i := range 5 {
				resp, code := e.do(t, from(fmt.Sprintf("127.0.1.%d", i+1)), "GET", "/v2/", basic("bob", "guess"), nil)
				want(t, "a wrong password for bob", resp, code, 401, "UNAUTHORIZED")
			}
			resp, code = e.do(t, from("127.0.2.1"), "GET", "/v2/", basic("bob", "bob-pw"), nil)
			want(t, "bob after five failures", resp, code, 429, "TOOMANYREQUESTS")
			e.clock.Advance(time.Second)
			resp, code = e.do(t, from("127.0.2.2"), "GET", "/v2/", basic("bob", "guess"), nil)
			want(t, "a sixth wrong password for bob", resp, code, 401, "UNAUTHORIZED")
			resp, code = e.do(t, from("127.0.2.3"), "GET", "/v2/", basic("bob", "bob-pw"), nil)
			want(t, "bob after six failures", resp, code, 429, "TOOMANYREQUESTS")
			if resp.Header.Get("Retry-After") != "2" {
				t.Fatalf("Retry-After %q after six failures, want 2", resp.Header.Get("Retry-After"))
			}
			e.clock.Advance(2 * time.Second)
			resp, _ = e.do(t, from("127.0.2.4"), "GET", "/v2/", basic("bob", "bob-pw"), nil)
			want(t, "bob once the wait is over", resp, "", 200, "")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &limitsEnv{data: t.TempDir(), clock: testutil.NewClock()}
			e.addr = testutil.FreeAddr(t)
			e.url = "http://" + e.addr
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			args := append([]string{"--addr", e.addr, "--data", e.data, "--registry-only"}, tc.args...)
			var log syncBuffer
			go func() { done <- run(ctx, args, &log, e.clock) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("run = %v", err)
				}
			}()
			for i := 0; ; i++ {
				resp, err := local.Get(e.url + "/healthz")
				if err == nil {
					resp.Body.Close()
					break
				}
				select {
				case err := <-done:
					done <- err
					t.Fatalf("the server stopped: %v\n%s", err, log.String())
				case <-time.After(20 * time.Millisecond):
				}
			}
			tc.test(t, e)
		})
	}
}
