package testutil

import (
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
)

// QuietRegistry is go-containerregistry's in-memory registry with its
// request log discarded; opts add to that (registry.WithReferrersSupport,
// say). Wrap it to make a registry misbehave.
func QuietRegistry(opts ...registry.Option) http.Handler {
	return registry.New(append([]registry.Option{registry.Logger(log.New(io.Discard, "", 0))}, opts...)...)
}

// Serve serves h on loopback until the test ends and returns its
// host:port, which go-containerregistry's clients reach over plain http.
func Serve(t testing.TB, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// Registry starts a QuietRegistry for the test and returns its host:port.
func Registry(t testing.TB) string {
	t.Helper()
	return Serve(t, QuietRegistry())
}

// FreeAddr is a loopback host:port that nothing listened on when it was
// asked for: where a test starts a server of its own, or finds nothing.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
