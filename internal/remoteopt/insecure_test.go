package remoteopt

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestInsecureTransportPlainHTTP: an https URL to a server that speaks
// http works through InsecureTransport (and is remembered), and fails
// through the default transport.
func TestInsecureTransportPlainHTTP(t *testing.T) {
	var hits int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		w.WriteHeader(http.StatusTeapot)
	}))
	defer srv.Close()
	url := "https://" + strings.TrimPrefix(srv.URL, "http://") + "/v2/"

	if resp, err := (&http.Client{Transport: remote.DefaultTransport}).Get(url); err == nil {
		resp.Body.Close()
		t.Fatal("the default transport spoke http to an https URL")
	}
	tr := InsecureTransport()
	for i := range 2 {
		req, _ := http.NewRequest(http.MethodPut, url, strings.NewReader("body"))
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusTeapot {
			t.Errorf("call %d: status %d", i, resp.StatusCode)
		}
	}
	if !tr.(*insecure).isPlain(strings.TrimPrefix(srv.URL, "http://")) {
		t.Error("the host was not remembered as plain http")
	}
	if hits != 2 {
		t.Errorf("server saw %d requests, want 2", hits)
	}
}

// TestInsecureTransportTLS: a push to a registry with a certificate no one
// trusts fails by default and works with InsecureTransport.
func TestInsecureTransportTLS(t *testing.T) {
	srv := httptest.NewTLSServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	ref, err := name.ParseReference(strings.TrimPrefix(srv.URL, "https://") + "/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := remote.Write(ref, img, New(ctx, nil, nil)...); err == nil {
		t.Fatal("a push to an untrusted certificate worked with the default transport")
	}
	if err := remote.Write(ref, img, New(ctx, nil, InsecureTransport())...); err != nil {
		t.Fatalf("push with InsecureTransport: %v", err)
	}
}
