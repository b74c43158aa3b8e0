package regbench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"
)

// Blob is Size bytes of a ChaCha8 stream keyed by Seed: incompressible,
// reproducible, and never held in memory. Open streams it afresh each time.
type Blob struct {
	Seed   [32]byte
	Size   int64
	Digest v1.Hash
}

// NewBlob computes the digest of the stream that seed and size define, in
// one streaming pass.
func NewBlob(seed [32]byte, size int64) (Blob, error) {
	b := Blob{Seed: seed, Size: size}
	h := sha256.New()
	if _, err := io.Copy(h, b.Open()); err != nil {
		return Blob{}, err
	}
	b.Digest = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
	return b, nil
}

// Open returns a fresh reader of the blob's content.
func (b Blob) Open() io.Reader {
	return io.LimitReader(rand.NewChaCha8(b.Seed), b.Size)
}

// Layer returns the blob as a v1.Layer with a known digest and size, so
// remote's pusher sends it in one PATCH of known length and can retry it.
func (b Blob) Layer() v1.Layer { return blobLayer{b} }

type blobLayer struct{ b Blob }

func (l blobLayer) Digest() (v1.Hash, error)             { return l.b.Digest, nil }
func (l blobLayer) DiffID() (v1.Hash, error)             { return l.b.Digest, nil }
func (l blobLayer) Compressed() (io.ReadCloser, error)   { return io.NopCloser(l.b.Open()), nil }
func (l blobLayer) Uncompressed() (io.ReadCloser, error) { return io.NopCloser(l.b.Open()), nil }
func (l blobLayer) Size() (int64, error)                 { return l.b.Size, nil }
func (l blobLayer) MediaType() (types.MediaType, error)  { return types.OCIUncompressedLayer, nil }

// Workload is a set of Count distinct blobs of Size bytes each, pushed to
// or pulled from Repo (a repository path without the registry host).
type Workload struct {
	Name  string
	Repo  string
	Count int
	Size  int64
}

// The benchmark's workloads.
var (
	Big   = Workload{Name: "100MiB", Repo: "regbench/big", Count: 1, Size: 100 << 20}
	Small = Workload{Name: "1000x4KiB", Repo: "regbench/small", Count: 1000, Size: 4 << 10}
)

// Bytes is the workload's total payload.
func (w Workload) Bytes() int64 { return int64(w.Count) * w.Size }

// Blobs returns generation gen of the workload's blobs: every (gen, index,
// size) gives different content, so each generation is new to a registry.
func (w Workload) Blobs(gen uint64) ([]Blob, error) {
	blobs := make([]Blob, w.Count)
	for i := range blobs {
		var seed [32]byte
		binary.LittleEndian.PutUint64(seed[0:], gen)
		binary.LittleEndian.PutUint64(seed[8:], uint64(i))
		binary.LittleEndian.PutUint64(seed[16:], uint64(w.Size))
		copy(seed[24:], "regbench")
		b, err := NewBlob(seed, w.Size)
		if err != nil {
			return nil, err
		}
		blobs[i] = b
	}
	return blobs, nil
}

// Client pushes and pulls blobs with go-containerregistry's remote package,
// Concurrency blobs at a time, over its own connection pool.
type Client struct {
	Concurrency int
	transport   *http.Transport
}

// NewClient returns a client with its own connection pool and no proxy.
func NewClient(concurrency int) *Client {
	return &Client{
		Concurrency: max(concurrency, 1),
		transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        100,
			MaxIdleConnsPerHost: 100,
			IdleConnTimeout:     90 * time.Second,
		},
	}
}

// Close drops the client's idle connections.
func (c *Client) Close() { c.transport.CloseIdleConnections() }

func (c *Client) options(ctx context.Context) []remote.Option {
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(c.transport),
		remote.WithJobs(c.Concurrency),
		// A benchmark must see a failure, not a retried success.
		remote.WithRetryPredicate(func(error) bool { return false }),
	}
}

// Push uploads blobs to repo: per blob, remote's HEAD, POST, PATCH, PUT.
func (c *Client) Push(ctx context.Context, repo name.Repository, blobs []Blob) error {
	p, err := remote.NewPusher(c.options(ctx)...)
	if err != nil {
		return err
	}
	return c.each(ctx, blobs, "push", func(ctx context.Context, b Blob) error {
		return p.Upload(ctx, repo, b.Layer())
	})
}

// Pull downloads blobs from repo by digest and reads each to its end.
// remote's blob reader hashes the stream and fails at EOF unless it matches
// the digest asked for; Pull also checks the byte count.
func (c *Client) Pull(ctx context.Context, repo name.Repository, blobs []Blob) error {
	p, err := remote.NewPuller(c.options(ctx)...)
	if err != nil {
		return err
	}
	return c.each(ctx, blobs, "pull", func(ctx context.Context, b Blob) error {
		return pullOne(ctx, p, repo, b)
	})
}

// each runs do for every blob, c.Concurrency at once.
func (c *Client) each(ctx context.Context, blobs []Blob, what string, do func(context.Context, Blob) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.Concurrency)
	for _, b := range blobs {
		g.Go(func() error {
			if err := do(gctx, b); err != nil {
				return fmt.Errorf("%s %s: %w", what, b.Digest, err)
			}
			return nil
		})
	}
	return g.Wait()
}

func pullOne(ctx context.Context, p *remote.Puller, repo name.Repository, b Blob) error {
	l, err := p.Layer(ctx, repo.Digest(b.Digest.String()))
	if err != nil {
		return err
	}
	rc, err := l.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	buf := bufPool.Get().(*[]byte)
	defer bufPool.Put(buf)
	var n counter
	if _, err := io.CopyBuffer(&n, rc, *buf); err != nil {
		return err
	}
	if int64(n) != b.Size {
		return fmt.Errorf("read %d bytes, want %d", n, b.Size)
	}
	return nil
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// counter counts what is written to it; it has no ReadFrom, so CopyBuffer
// uses the buffer it is given.
type counter int64

func (c *counter) Write(p []byte) (int, error) { *c += counter(len(p)); return len(p), nil }

// FreeAddr returns a 127.0.0.1 address with a port that was free a moment ago.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// WaitReady polls GET http://addr/v2/ until it answers 200 or 401, ctx ends
// or exited is closed.
func WaitReady(ctx context.Context, addr string, exited <-chan struct{}) error {
	client := &http.Client{Timeout: time.Second}
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v2/", nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
			err = fmt.Errorf("GET /v2/: %s", resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w (last: %v)", addr, ctx.Err(), last)
		case <-exited:
			return fmt.Errorf("%s: server exited before answering GET /v2/", addr)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Server is a registry running as a child process.
type Server struct {
	Name string
	Addr string
	Log  string // the file holding the process's stdout and stderr

	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
	stopped bool
}

// Start runs argv (which must make the server listen on addr), writing its
// output to logPath, and waits until GET /v2/ answers.
func Start(ctx context.Context, name, addr, logPath string, argv []string) (*Server, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child holds its own descriptor
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{Name: name, Addr: addr, Log: logPath, cmd: cmd, exited: make(chan struct{})}
	go func() { s.waitErr = cmd.Wait(); close(s.exited) }()
	ready, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := WaitReady(ready, addr, s.exited); err != nil {
		_ = s.Stop()
		return nil, fmt.Errorf("%s (%s): %w\n%s", name, strings.Join(argv, " "), err, s.LogTail(2048))
	}
	return s, nil
}

// PID is the server's process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// LogTail returns up to the last n bytes of the server's output.
func (s *Server) LogTail(n int) string {
	b, _ := os.ReadFile(s.Log)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// Stop sends SIGTERM, waits up to ten seconds, then kills. An exit caused
// by the signal is not an error.
func (s *Server) Stop() error {
	if s.stopped {
		<-s.exited
		return nil
	}
	s.stopped = true
	select {
	case <-s.exited:
		return fmt.Errorf("%s exited on its own: %v", s.Name, s.waitErr)
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("%s ignored SIGTERM for 10s: killed", s.Name)
	}
	var exit *exec.ExitError
	if s.waitErr == nil || errors.As(s.waitErr, &exit) {
		return nil // a clean exit, a signal exit, or a non-zero status after SIGTERM
	}
	return s.waitErr
}

// RSS returns the server's resident set size and its peak (VmRSS, VmHWM),
// in bytes.
func (s *Server) RSS() (rss, peak int64, err error) {
	return ProcRSS(s.PID())
}

// ResetPeakRSS sets the server's VmHWM back to its current RSS (Linux ≥ 4.0:
// "5" written to /proc/PID/clear_refs), so the next peak is one workload's.
func (s *Server) ResetPeakRSS() error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", s.PID()), []byte("5"), 0)
}

// ProcRSS reads VmRSS and VmHWM of process pid from /proc, in bytes.
func ProcRSS(pid int) (rss, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	rss, err1 := statusKiB(b, "VmRSS:")
	peak, err2 := statusKiB(b, "VmHWM:")
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/status: %w", pid, err)
	}
	return rss << 10, peak << 10, nil
}

func statusKiB(status []byte, key string) (int64, error) {
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte(key))
		if !ok {
			continue
		}
		f := strings.Fields(string(rest))
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("unexpected %s line %q", key, line)
		}
		return strconv.ParseInt(f[0], 10, 64)
	}
	return 0, fmt.Errorf("no %s line", key)
}
