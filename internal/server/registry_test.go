package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/store"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// serve runs the server with args on a free port until the test ends and
// returns its address once it answers.
func serve(t *testing.T, client *http.Client, scheme string, host string, args ...string) string {
	t.Helper()
	ln, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, append([]string{"--addr", addr}, args...), io.Discard) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
	url := scheme + "://" + strings.Replace(addr, "0.0.0.0", "127.0.0.1", 1)
	for i := 0; i < 200; i++ {
		if resp, err := client.Get(url + "/healthz"); err == nil {
			resp.Body.Close()
			return url
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("server never answered")
	return ""
}

// selfSigned writes a certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "kiln test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalPKCS8PrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestRegistryOverTLSAlone(t *testing.T) {
	cert, key, pool := selfSigned(t)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	url := serve(t, client, "https", "127.0.0.1", "--registry-only", "--data", t.TempDir(), "--tls-cert", cert, "--tls-key", key)
	for path, want := range map[string]int{"/v2/": 200, "/healthz": 200, "/version": 404} {
		resp, err := client.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s = %d, want %d", path, resp.StatusCode, want)
		}
	}
}

// Listening beyond loopback without credentials, the registry is read-only.
func TestRegistryBeyondLoopbackRefusesAnonymousPush(t *testing.T) {
	url := serve(t, http.DefaultClient, "http", "0.0.0.0", "--data", t.TempDir())
	resp, err := http.Post(url+"/v2/app/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous push beyond loopback: %s, want 401", resp.Status)
	}
	if resp, err := http.Get(url + "/version"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/version next to the registry: %v %v", resp, err)
	}
}

func TestRunBadFlags(t *testing.T) {
	dir := t.TempDir()
	htpasswd := filepath.Join(dir, "htpasswd")
	os.WriteFile(htpasswd, []byte("alice:plain\n"), 0o600)
	shortTokens := filepath.Join(dir, "tokens")
	os.WriteFile(shortTokens, []byte("# ci\n"+strings.Repeat("t", 40)+"\nshort\n"), 0o600)
	// A store another server is serving: its journal is taken.
	busy := filepath.Join(t.TempDir(), "store")
	held, err := store.Open(busy)
	if err != nil {
		t.Fatal(err)
	}
	if err := held.Repositories().OpenJournal(); err != nil {
		t.Fatal(err)
	}
	defer held.Repositories().CloseJournal()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"registry-only without a store", []string{"--registry-only"}, "--data DIR or --store DIR"},
		{"cert without key", []string{"--tls-cert", "c.pem"}, "go together"},
		{"private without credentials", []string{"--data", dir, "--private", "x/*"}, "need credentials"},
		{"missing htpasswd file", []string{"--data", dir, "--htpasswd", filepath.Join(dir, "nope")}, "htpasswd file"},
		{"plain-text htpasswd", []string{"--data", dir, "--htpasswd", htpasswd}, "only bcrypt"},
		{"missing token file", []string{"--data", dir, "--token-file", filepath.Join(dir, "nope")}, "token file"},
		{"stray argument", []string{"serve"}, "unexpected argument"},
		{"short token", []string{"--data", dir, "--token-file", shortTokens}, "tokens:3: the token is 5 characters"},
		{"no connections", []string{"--data", dir, "--max-conns", "0"}, "--max-conns must be positive"},
		{"bad size", []string{"--data", dir, "--upload-memory", "12XB"}, "want a byte count"},
		{"negative size", []string{"--data", dir, "--max-blob-size", "-1"}, "want a byte count"},
		{"store served by another server", []string{"--store", busy, "--registry-only"}, "another server"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Run(context.Background(), append([]string{"--addr", "127.0.0.1:0"}, tc.args...), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v, want one line containing %q", err, tc.want)
			}
		})
	}
}

// A token file others may read is served, with a warning in the log.
func TestRunWarnsAboutReadableTokenFile(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	os.WriteFile(tokens, []byte(strings.Repeat("t", 40)+"\n"), 0o600)
	os.Chmod(tokens, 0o644)
	addr := testutil.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	var log syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"--addr", addr, "--data", dir, "--token-file", tokens, "--log-format", "text"}, &log)
	}()
	for i := 0; i < 200; i++ {
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if out := log.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "chmod 600") {
		t.Fatalf("no warning about a token file of mode 0644 in:\n%s", out)
	}
}

// syncBuffer is a strings.Builder safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
