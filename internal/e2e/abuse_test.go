package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"golang.org/x/crypto/bcrypt"
)

// abuseRSSBound is the most resident memory the server may reach under
// TestRegistryUnderAbuse. Measured here (2 cores, 2026-11-29): before the
// limits the peak was 404 MiB (1,000 abandoned sessions of 250 KiB held
// in memory, 500 bcrypt checks, 200 stalled bodies never ended); with the
// limits at their defaults it is 53 MiB. The bound leaves room for the
// 64 MiB upload budget and the journal's own.
const abuseRSSBound = 128 << 20

// TestRegistryUnderAbuse runs cmd/server with its default limits (and a
// short --io-timeout, so the test ends soon) while a client opens 1,000
// upload sessions of 250 KiB each and abandons them, 200 connections send
// bodies that stall, and 500 wrong passwords are sprayed from 10
// addresses. An honest client still pushes, and the server's resident
// memory stays under abuseRSSBound throughout. Loopback only; bounded in
// count and time. -short skips it except under CI=true.
func TestRegistryUnderAbuse(t *testing.T) {
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("end-to-end: not in -short")
	}
	dir := t.TempDir()
	htpasswd := filepath.Join(dir, "htpasswd")
	var users strings.Builder
	for _, u := range []string{"alice", "mallory"} {
		h, err := bcrypt.GenerateFromPassword([]byte(u+"-pw"), bcrypt.DefaultCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&users, "%s:%s\n", u, h)
	}
	os.WriteFile(htpasswd, []byte(users.String()), 0o600)
	p := startRegistryProcess(t, "--htpasswd", htpasswd, "--io-timeout", "2s")

	// The server's resident memory, sampled until the test ends; VmHWM
	// (the kernel's high-water mark) catches peaks between samples.
	var peak atomic.Int64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if rss := procStatus(p.cmd.Process.Pid, "VmHWM"); rss > peak.Load() {
				peak.Store(rss)
			}
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
		}
	}()
	startRSS := procStatus(p.cmd.Process.Pid, "VmRSS")

	begin := time.Now()
	mallory := basicAuth("mallory", "mallory-pw")
	attacker := sourceClient("127.0.0.1")
	honest := remote.WithTransport(sourceClient("127.0.0.2").Transport)
	alice := remote.WithAuth(&authn.Basic{Username: "alice", Password: "alice-pw"})

	// 20 anonymous GETs of a large layer by manifest path, at once: a
	// layer is not a manifest, so each is a 404 that reads nothing.
	big, err := random.Image(32<<20, 1)
	if err != nil {
		t.Fatal(err)
	}
	bigRef, _ := name.ParseReference(p.host() + "/abuse/big:v1")
	if err := remote.Write(bigRef, big, honest, alice); err != nil {
		t.Fatalf("pushing the large image: %v", err)
	}
	bigLayers, _ := big.Layers()
	bigLayer, _ := bigLayers[0].Digest()
	parallel(20, 20, func(i int) {
		resp, err := attacker.Get(p.url() + "/v2/abuse/big/manifests/" + bigLayer.String())
		if err != nil {
			t.Errorf("GET %d of a layer as a manifest: %v", i, err)
			return
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || n > 4<<10 {
			t.Errorf("GET %d of a 32 MiB layer as a manifest: %s with %d bytes, want a 404", i, resp.Status, n)
		}
	})
	t.Logf("%v: 20 GETs of a layer as a manifest answered 404", time.Since(begin).Round(time.Millisecond))

	// 1,000 upload sessions of 250 KiB, abandoned.
	chunk := bytes.Repeat([]byte("a"), 250<<10)
	var opened, refused atomic.Int32
	parallel(16, 1000, func(i int) {
		req, _ := http.NewRequest("POST", p.url()+"/v2/abuse/sessions/blobs/uploads/", nil)
		req.Header.Set("Authorization", mallory)
		resp, err := attacker.Do(req)
		if err != nil {
			t.Errorf("session %d: %v", i, err)
			return
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			refused.Add(1)
			return
		}
		req, _ = http.NewRequest("PATCH", p.url()+resp.Header.Get("Location"), bytes.NewReader(chunk))
		req.Header.Set("Authorization", mallory)
		if resp, err = attacker.Do(req); err != nil {
			t.Errorf("session %d PATCH: %v", i, err)
			return
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusAccepted {
			opened.Add(1)
		}
	})
	t.Logf("%v: upload sessions: %d opened, %d refused with 429", time.Since(begin).Round(time.Millisecond), opened.Load(), refused.Load())
	if opened.Load() > 100 {
		t.Errorf("%d sessions of one client accepted, want at most 100", opened.Load())
	}

	// 200 stalled bodies, a wrong-password spray and an honest push, at once.
	var wg sync.WaitGroup
	slow := make([]net.Conn, 200)
	for i := range slow {
		c, err := net.Dial("tcp", p.host())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		blob := bytes.Repeat([]byte{byte(i)}, 1<<20)
		sum := sha256.Sum256(blob)
		fmt.Fprintf(c, "POST /v2/abuse/slow/blobs/uploads/?digest=sha256:%s HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\nContent-Length: %d\r\n\r\n",
			hex.EncodeToString(sum[:]), p.host(), mallory, len(blob))
		c.Write(blob[:1024])
		slow[i] = c
	}
	var sprayed401, sprayed429 atomic.Int32
	wg.Add(1)
	go func() {
		defer wg.Done()
		parallel(16, 500, func(i int) {
			req, _ := http.NewRequest("GET", p.url()+"/v2/", nil)
			req.Header.Set("Authorization", basicAuth(fmt.Sprintf("user%d", i), "Winter2026!"))
			resp, err := sourceClient(fmt.Sprintf("127.0.1.%d", i%10+1)).Do(req)
			if err != nil {
				t.Errorf("spray %d: %v", i, err)
				return
			}
			resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusUnauthorized:
				sprayed401.Add(1)
			case http.StatusTooManyRequests:
				sprayed429.Add(1)
			default:
				t.Errorf("spray %d: %s", i, resp.Status)
			}
		})
	}()
	img, err := random.Image(1<<20, 3)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(p.host() + "/honest/app:v1")
	if err := remote.Write(ref, img, honest, alice, remote.WithContext(context.Background())); err != nil {
		t.Errorf("an honest push during the abuse: %v", err)
	} else if got, err := remote.Image(ref, honest, alice); err != nil {
		t.Errorf("an honest pull during the abuse: %v", err)
	} else if err := validate.Image(got); err != nil {
		t.Errorf("what the honest client pushed: %v", err)
	}
	t.Logf("%v: the honest push and pull are done", time.Since(begin).Round(time.Millisecond))
	wg.Wait()
	t.Logf("%v: password spray: %d refused with 401 (a bcrypt check each), %d with 429 (no check)", time.Since(begin).Round(time.Millisecond), sprayed401.Load(), sprayed429.Load())
	// Five free failures per address, then one try per wait, and the
	// waits double (1, 2, 4, 8, 16 s...): the spray lasts seconds.
	if sprayed401.Load() > 10*10 {
		t.Errorf("%d sprayed passwords were checked, want at most 10 per client address (100)", sprayed401.Load())
	}
	// The server ends every stalled body (--io-timeout 2s).
	deadline := time.Now().Add(time.Minute)
	for i, c := range slow {
		c.SetReadDeadline(deadline)
		br := bufio.NewReader(c)
		if resp, err := http.ReadResponse(br, nil); err == nil {
			resp.Body.Close()
			if resp.StatusCode < 400 {
				t.Errorf("stalled body %d: %s", i, resp.Status)
			}
		}
		if _, err := io.Copy(io.Discard, br); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Errorf("stalled body %d: the connection was still open a minute after the spray", i)
				break
			}
		}
	}
	t.Logf("%v: every stalled body ended", time.Since(begin).Round(time.Millisecond))
	close(stopSampling)
	<-sampled
	t.Logf("server RSS: %d MiB at start, peak %d MiB (bound %d MiB)", startRSS>>20, peak.Load()>>20, abuseRSSBound>>20)
	if peak.Load() > abuseRSSBound {
		t.Errorf("the server's RSS peaked at %d MiB, over the bound of %d MiB", peak.Load()>>20, abuseRSSBound>>20)
	}
}

// procStatus reads a memory field of /proc/PID/status, in bytes.
func procStatus(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func basicAuth(user, pass string) string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(user, pass)
	return req.Header.Get("Authorization")
}

// sourceClient's connections come from the loopback address ip: the
// server tells clients apart by address.
func sourceClient(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 16}}
}

// parallel runs f(0..n-1) on workers goroutines.
func parallel(workers, n int, f func(i int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}
