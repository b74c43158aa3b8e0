package regbench

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/kilnbuild/kiln/internal/testutil"
)

// TestMain lets the test binary act as a registry child process for
// TestServerStartStop: `regbench-child ADDR` serves go-containerregistry's
// in-memory registry on ADDR, `regbench-child exit` fails at once.
func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == "regbench-child" {
		if os.Args[2] == "exit" {
			fmt.Fprintln(os.Stderr, "child: refusing to serve")
			os.Exit(3)
		}
		log.Fatal(http.ListenAndServe(os.Args[2], testutil.QuietRegistry()))
	}
	os.Exit(m.Run())
}

// concurrency is the number of blobs in flight in every workload, for every
// server.
const concurrency = 8

// A server under test: kiln's registry, or crane's in memory or on disk.
type spec struct {
	name string
	argv func(b *testing.B, addr string) []string
}

var specs = []spec{
	{"kiln", kilnArgv},
	{"kiln-nosync", func(b *testing.B, addr string) []string { return append(kilnArgv(b, addr), "--no-fsync-unsafe") }},
	{"crane-mem", func(b *testing.B, addr string) []string { return craneArgv(b, addr, "") }},
	{"crane-disk", func(b *testing.B, addr string) []string { return craneArgv(b, addr, b.TempDir()) }},
}

// kilnArgv runs $KILN_SERVER_BIN (an absolute path), or ./cmd/server built
// from this checkout, as a registry alone, persisting to a fresh directory.
func kilnArgv(b *testing.B, addr string) []string {
	bin := os.Getenv("KILN_SERVER_BIN")
	if bin == "" {
		bin = filepath.Join(b.TempDir(), "server")
		build := exec.Command("go", "build", "-o", bin, "./cmd/server")
		build.Dir = filepath.Join("..", "..")
		if out, err := build.CombinedOutput(); err != nil {
			b.Fatalf("go build ./cmd/server: %v\n%s", err, out)
		}
	}
	return []string{bin, "--addr", addr, "--data", b.TempDir(), "--registry-only"}
}

// craneArgv runs `crane registry serve`, in memory or with --disk.
func craneArgv(b *testing.B, addr, disk string) []string {
	argv := []string{testutil.RequireTool(b, "crane"), "registry", "serve", "--address", addr}
	if disk != "" {
		argv = append(argv, "--disk", disk)
	}
	return argv
}

// bench is one running server and what has been pushed to it.
type bench struct {
	srv    *Server
	client *Client
	gen    uint64
	pushed map[string][]Blob // workload name → its last generation pushed
}

func startBench(b *testing.B, s spec) *bench {
	addr, err := FreeAddr()
	if err != nil {
		b.Fatal(err)
	}
	argv := s.argv(b, addr)
	srv, err := Start(b.Context(), s.name, addr, filepath.Join(b.TempDir(), "server.log"), argv)
	if err != nil {
		b.Fatal(err)
	}
	client := NewClient(concurrency)
	b.Cleanup(func() {
		client.Close()
		if err := srv.Stop(); err != nil {
			b.Errorf("%v\n%s", err, srv.LogTail(2048))
		}
	})
	// Warm the server and the connection pool, untimed.
	warm := Workload{Name: "warm", Repo: "regbench/warm", Count: 2 * concurrency, Size: 4 << 10}
	bn := &bench{srv: srv, client: client, pushed: map[string][]Blob{}}
	blobs, err := warm.Blobs(bn.next())
	if err != nil {
		b.Fatal(err)
	}
	repo := bn.repo(b, warm)
	if err := client.Push(b.Context(), repo, blobs); err != nil {
		b.Fatalf("%v\n%s", err, srv.LogTail(2048))
	}
	if err := client.Pull(b.Context(), repo, blobs); err != nil {
		b.Fatalf("%v\n%s", err, srv.LogTail(2048))
	}
	return bn
}

func (bn *bench) next() uint64 { bn.gen++; return bn.gen }

func (bn *bench) repo(b *testing.B, w Workload) name.Repository {
	repo, err := name.NewRepository(bn.srv.Addr + "/" + w.Repo)
	if err != nil {
		b.Fatal(err)
	}
	return repo
}

func (bn *bench) push(b *testing.B, w Workload) {
	b.StopTimer()
	blobs, err := w.Blobs(bn.next()) // new content: remote skips blobs a registry has
	if err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
	if err := bn.client.Push(b.Context(), bn.repo(b, w), blobs); err != nil {
		b.Fatalf("%v\n%s", err, bn.srv.LogTail(2048))
	}
	bn.pushed[w.Name] = blobs
}

func (bn *bench) pull(b *testing.B, w Workload) {
	if err := bn.client.Pull(b.Context(), bn.repo(b, w), bn.pushed[w.Name]); err != nil {
		b.Fatalf("%v\n%s", err, bn.srv.LogTail(2048))
	}
}

// run times op on w and reports MB/s (10^6 bytes), the server's RSS when
// the workload starts and its peak RSS during the workload (VmHWM, reset
// after any untimed setup).
func (bn *bench) run(b *testing.B, op string, w Workload) {
	if op == "pull" && bn.pushed[w.Name] == nil {
		bn.push(b, w) // so that a -bench filter may select a pull alone
	}
	rss, _, err := bn.srv.RSS()
	if err != nil {
		b.Fatal(err)
	}
	if err := bn.srv.ResetPeakRSS(); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(w.Bytes())
	for b.Loop() { // the first call resets the timer
		if op == "push" {
			bn.push(b, w)
		} else {
			bn.pull(b, w)
		}
	}
	_, peak, err := bn.srv.RSS()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(rss)/(1<<20), "start-RSS-MiB")
	b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
}

// BenchmarkRegistry pushes and pulls one 100 MiB blob and 1000 blobs of
// 4 KiB (8 at a time) against kiln's registry and `crane registry serve`,
// each a child process on loopback, with the same client. Every push sends
// content new to the server. scripts/bench-registry.sh runs it and prints
// a table.
func BenchmarkRegistry(b *testing.B) {
	for _, s := range specs {
		b.Run(s.name, func(b *testing.B) {
			bn := startBench(b, s)
			for _, w := range []Workload{Big, Small} {
				for _, op := range []string{"push", "pull"} {
					b.Run(op+"-"+w.Name, func(b *testing.B) { bn.run(b, op, w) })
				}
			}
		})
	}
}

// TestWorkloadsAgainstInProcessRegistry runs the workload code, at small
// sizes, against go-containerregistry's registry in this process.
func TestWorkloadsAgainstInProcessRegistry(t *testing.T) {
	ts := httptest.NewServer(testutil.QuietRegistry())
	defer ts.Close()
	addr := strings.TrimPrefix(ts.URL, "http://")
	c := NewClient(concurrency)
	defer c.Close()
	ctx := t.Context()

	for _, w := range []Workload{
		{Name: "big", Repo: "regbench/big", Count: 1, Size: 3<<20 + 17},
		{Name: "small", Repo: "regbench/small", Count: 40, Size: 4 << 10},
		{Name: "empty", Repo: "regbench/empty", Count: 1, Size: 0},
	} {
		t.Run(w.Name, func(t *testing.T) {
			repo, err := name.NewRepository(addr + "/" + w.Repo)
			if err != nil {
				t.Fatal(err)
			}
			gen1, err := w.Blobs(1)
			if err != nil {
				t.Fatal(err)
			}
			gen2, err := w.Blobs(2)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Pull(ctx, repo, gen1); err == nil {
				t.Fatal("pulled blobs that were never pushed")
			}
			for _, blobs := range [][]Blob{gen1, gen2} {
				if err := c.Push(ctx, repo, blobs); err != nil {
					t.Fatal(err)
				}
				if err := c.Pull(ctx, repo, blobs); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.Push(ctx, repo, gen1); err != nil { // already there: HEAD only
				t.Fatal(err)
			}
			if w.Size > 0 && gen1[0].Digest == gen2[0].Digest {
				t.Error("two generations share content")
			}
		})
	}
}

// TestPullChecksContent serves wrong bytes of the right length for every
// blob: Pull must fail.
func TestPullChecksContent(t *testing.T) {
	blobs, err := Workload{Repo: "r", Count: 3, Size: 1000}.Blobs(7)
	if err != nil {
		t.Fatal(err)
	}
	for _, short := range []bool{false, true} {
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.Contains(r.URL.Path, "/blobs/") {
				return // 200 for /v2/
			}
			body := bytes.Repeat([]byte{'x'}, 1000)
			if short {
				body = body[:999]
			}
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			w.Write(body)
		}))
		repo, err := name.NewRepository(strings.TrimPrefix(ts.URL, "http://") + "/r")
		if err != nil {
			t.Fatal(err)
		}
		c := NewClient(2)
		if err := c.Pull(t.Context(), repo, blobs); err == nil {
			t.Errorf("short=%v: Pull accepted wrong content", short)
		} else {
			t.Logf("short=%v: %v", short, err)
		}
		c.Close()
		ts.Close()
	}
}

func TestBlobIsDeterministicAndStreamed(t *testing.T) {
	seed := [32]byte{1, 2, 3}
	a, err := NewBlob(seed, 1<<20+3)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBlob(seed, 1<<20+3)
	if err != nil {
		t.Fatal(err)
	}
	if a.Digest != b.Digest {
		t.Fatalf("same seed, digests %s and %s", a.Digest, b.Digest)
	}
	// Odd read sizes see the same stream.
	h := sha256.New()
	buf := make([]byte, 7919)
	r := a.Open()
	n, err := io.CopyBuffer(struct{ io.Writer }{h}, struct{ io.Reader }{r}, buf)
	if err != nil || n != a.Size {
		t.Fatalf("read %d bytes, %v", n, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != a.Digest.Hex {
		t.Fatalf("chunked read digest %s, want %s", got, a.Digest.Hex)
	}
	seed[0]++
	c, err := NewBlob(seed, a.Size)
	if err != nil {
		t.Fatal(err)
	}
	if c.Digest == a.Digest {
		t.Fatal("different seeds, same digest")
	}
	if l := a.Layer(); l == nil {
		t.Fatal("no layer")
	} else if d, _ := l.Digest(); d != a.Digest {
		t.Fatalf("layer digest %s, want %s", d, a.Digest)
	}
	if w := (Workload{Count: 1000, Size: 4 << 10}); w.Bytes() != 4096000 {
		t.Fatalf("Bytes() = %d", w.Bytes())
	}
}

func TestProcRSS(t *testing.T) {
	rss, peak, err := ProcRSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if rss <= 0 || peak < rss {
		t.Fatalf("rss %d, peak %d", rss, peak)
	}
	if _, err := statusKiB([]byte("VmHWM:\t12 MB\n"), "VmHWM:"); err == nil {
		t.Error("accepted a unit other than kB")
	}
	if _, err := statusKiB([]byte("VmRSS:\t12 kB\n"), "VmHWM:"); err == nil {
		t.Error("accepted a missing key")
	}
}

// TestServerStartStop runs this test binary as a registry child: Start
// waits for /v2/, RSS and its reset read /proc, Stop ends the child; a
// child that exits at once is reported with its output.
func TestServerStartStop(t *testing.T) {
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	s, err := Start(t.Context(), "child", addr, filepath.Join(t.TempDir(), "log"), []string{os.Args[0], "regbench-child", addr})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.RSS(); err != nil {
		t.Error(err)
	}
	if err := s.ResetPeakRSS(); err != nil {
		t.Error(err)
	}
	rss, peak, err := s.RSS()
	if err != nil || rss <= 0 || peak < rss {
		t.Errorf("after reset: rss %d, peak %d, %v", rss, peak, err)
	}
	if err := s.Stop(); err != nil {
		t.Error(err)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}

	addr, err = FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = Start(t.Context(), "quitter", addr, filepath.Join(t.TempDir(), "log"), []string{os.Args[0], "regbench-child", "exit"})
	if err == nil || !strings.Contains(err.Error(), "refusing to serve") {
		t.Fatalf("Start of a child that exits: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v to notice the exit", d)
	}
}
