package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kilnbuild/kiln/internal/registry"
	"github.com/kilnbuild/kiln/internal/store"
)

// sendfileListener hands out connections that record how response bytes
// reach them: through ReadFrom from a file (what net's sendfile takes: an
// *os.File, bare or in an io.LimitedReader), through ReadFrom from anything
// else, or through Write. Each ReadFrom is passed on to the *net.TCPConn,
// so the kernel really sends the file. A connection's record is kept when
// it closes, by its client's address.
type sendfileListener struct {
	net.Listener
	mu     sync.Mutex
	cond   *sync.Cond
	closed map[string]sent
}

// sent is what one connection was given.
type sent struct{ fromFile, fromOther, written int64 }

func newSendfileListener(ln net.Listener) *sendfileListener {
	l := &sendfileListener{Listener: ln, closed: map[string]sent{}}
	l.cond = sync.NewCond(&l.mu)
	return l
}

func (l *sendfileListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &sendfileConn{Conn: c, l: l}, nil
}

// wait returns the record of the connection from client once the server
// has closed it.
func (l *sendfileListener) wait(client string) sent {
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		if s, ok := l.closed[client]; ok {
			return s
		}
		l.cond.Wait()
	}
}

type sendfileConn struct {
	net.Conn
	l    *sendfileListener
	mu   sync.Mutex // sent: the server writes, and closes from another goroutine
	sent sent
	once sync.Once
}

func (c *sendfileConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.mu.Lock()
	c.sent.written += int64(n)
	c.mu.Unlock()
	return n, err
}

func (c *sendfileConn) ReadFrom(r io.Reader) (int64, error) {
	src := r
	if lr, ok := r.(*io.LimitedReader); ok {
		src = lr.R
	}
	n, err := c.Conn.(io.ReaderFrom).ReadFrom(r)
	c.mu.Lock()
	defer c.mu.Unlock()
	// *os.File, or os's fileWithoutWriteTo around one: both have Fd.
	if _, ok := src.(interface{ Fd() uintptr }); ok {
		c.sent.fromFile += n
	} else {
		c.sent.fromOther += n
	}
	return n, err
}

func (c *sendfileConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.mu.Lock()
		sent := c.sent
		c.mu.Unlock()
		c.l.mu.Lock()
		c.l.closed[c.RemoteAddr().String()] = sent
		c.l.mu.Unlock()
		c.l.cond.Broadcast()
	})
	return err
}

// oneShot is a client that opens a connection per request and reports
// each one's local address on dialed.
func oneShot(dialed chan<- string) *http.Client {
	var d net.Dialer
	return &http.Client{Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err == nil {
				dialed <- c.LocalAddr().String()
			}
			return c, err
		},
	}}
}

// sendfileStack serves a registry over a fresh store the way run does:
// the byte counters of the build service's server, the pacing, the
// connection limiter, on a recording listener.
func sendfileStack(t *testing.T) (*sendfileListener, string) {
	t.Helper()
	layout, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st := layout.Repositories()
	if err := st.OpenJournal(); err != nil {
		t.Fatal(err)
	}
	reg, err := registry.New(st, registry.Options{Access: registry.Access{AnonymousWrite: true}})
	if err != nil {
		t.Fatal(err)
	}
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec := newSendfileListener(tcp)
	counted := countBytes(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "in"}), prometheus.NewCounter(prometheus.CounterOpts{Name: "out"}))
	srv := &http.Server{Handler: paced(Handler(Options{Registry: counted}), defaultNetLimits.ioTimeout, defaultNetLimits.minRate)}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(limitConnections(rec, 16)) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != http.ErrServerClosed {
			t.Errorf("Serve = %v", err)
		}
		reg.Close()
		if err := st.CloseJournal(); err != nil {
			t.Error(err)
		}
	})
	return rec, tcp.Addr().String()
}

// sniffLen is how many bytes of a body net/http writes itself before it
// calls the connection's ReadFrom.
const sniffLen = 512

// A blob is sent with sendfile, whole or a range of it: its bytes reach
// the connection's ReadFrom from the blob's file, through every wrapper
// the server puts around the ResponseWriter and the connection. Bad
// ranges get 416 with the blob's size.
func TestBlobGetReachesSendfile(t *testing.T) {
	rec, addr := sendfileStack(t)
	// Both beyond the journal's size; 600 kB was once read and written
	// in 32 KiB steps rather than sent.
	for _, size := range []int{600_000, 3 << 20} {
		t.Run(strconv.Itoa(size), func(t *testing.T) { testBlobGet(t, rec, addr, size) })
	}
}

func testBlobGet(t *testing.T, rec *sendfileListener, addr string, size int) {
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{byte(size)}).Read(data)
	layer := static.NewLayer(data, types.OCILayer)
	repo, err := name.NewRepository(addr + "/big/blob")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteLayer(repo, layer); err != nil {
		t.Fatal(err)
	}
	h, _ := layer.Digest()
	url := "http://" + addr + "/v2/big/blob/blobs/" + h.String()
	dialed := make(chan string, 1)
	client := oneShot(dialed)
	total := strconv.Itoa(size)
	third := size / 3

	for _, tc := range []struct {
		name, rng    string
		status       int
		contentRange string
		from, to     int // the bytes expected, data[from:to]
	}{
		{"whole", "", http.StatusOK, "", 0, size},
		{"first bytes", "bytes=0-99", http.StatusPartialContent, "bytes 0-99/" + total, 0, 100},
		{"middle third", fmt.Sprintf("bytes=%d-%d", third, 2*third-1), http.StatusPartialContent, fmt.Sprintf("bytes %d-%d/%s", third, 2*third-1, total), third, 2 * third},
		{"open end", "bytes=1000-", http.StatusPartialContent, "bytes 1000-" + strconv.Itoa(size-1) + "/" + total, 1000, size},
		{"suffix", "bytes=-4096", http.StatusPartialContent, fmt.Sprintf("bytes %d-%d/%s", size-4096, size-1, total), size - 4096, size},
		{"end beyond the blob is cut", "bytes=10-99999999", http.StatusPartialContent, "bytes 10-" + strconv.Itoa(size-1) + "/" + total, 10, size},
		{"start at the size", "bytes=" + total + "-", http.StatusRequestedRangeNotSatisfiable, "bytes */" + total, 0, 0},
		{"start beyond the size", "bytes=99999999-", http.StatusRequestedRangeNotSatisfiable, "bytes */" + total, 0, 0},
		{"start after end", "bytes=20-10", http.StatusRequestedRangeNotSatisfiable, "bytes */" + total, 0, 0},
		{"not a number", "bytes=a-b", http.StatusRequestedRangeNotSatisfiable, "bytes */" + total, 0, 0},
		{"negative start", "bytes=-1-5", http.StatusRequestedRangeNotSatisfiable, "bytes */" + total, 0, 0},
		{"empty suffix", "bytes=-0", http.StatusRequestedRangeNotSatisfiable, "bytes */" + total, 0, 0},
		{"other unit", "items=0-9", http.StatusRequestedRangeNotSatisfiable, "bytes */" + total, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, url, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.rng != "" {
				req.Header.Set("Range", tc.rng)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			from := <-dialed
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status || resp.Header.Get("Content-Range") != tc.contentRange {
				t.Fatalf("Range %q: %s, Content-Range %q; want %d, %q", tc.rng, resp.Status, resp.Header.Get("Content-Range"), tc.status, tc.contentRange)
			}
			if tc.status == http.StatusRequestedRangeNotSatisfiable {
				return
			}
			if !bytes.Equal(body, data[tc.from:tc.to]) {
				t.Fatalf("Range %q: got %d bytes, want bytes %d-%d of the blob", tc.rng, len(body), tc.from, tc.to-1)
			}
			if resp.Header.Get("Docker-Content-Digest") != h.String() || resp.Header.Get("Accept-Ranges") != "bytes" {
				t.Errorf("headers: %v", resp.Header)
			}
			// Without keep-alive the server closes the connection once
			// the response is written: then its record is complete.
			// net/http writes a body's first 512 bytes (its sniffing
			// length) itself, with the header, and hands the rest to the
			// connection's ReadFrom.
			got, want := rec.wait(from), max(int64(tc.to-tc.from)-sniffLen, 0)
			if got.fromFile != want {
				t.Fatalf("Range %q: %d body bytes reached the connection's ReadFrom from the blob's file (sendfile), want %d; %d came by ReadFrom from something else, %d by Write (headers included)", tc.rng, got.fromFile, want, got.fromOther, got.written)
			}
		})
	}
}

// Errors in the table above would not show if the recorder itself were
// wrong: a response written with Write must not count as sendfile.
func TestSendfileRecorderCountsWrites(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec := newSendfileListener(tcp)
	srv := &http.Server{Handler: paced(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "", time.Time{}, strings.NewReader(strings.Repeat("x", 1<<20)))
	}), time.Minute, 0)}
	go srv.Serve(limitConnections(rec, 4))
	defer srv.Close()
	dialed := make(chan string, 1)
	resp, err := oneShot(dialed).Get("http://" + tcp.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	got := rec.wait(<-dialed)
	if n != 1<<20 || got.fromFile != 0 || got.fromOther+got.written < 1<<20 {
		t.Fatalf("read %d; recorded %+v", n, got)
	}
}
