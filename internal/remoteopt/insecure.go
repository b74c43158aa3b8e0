package remoteopt

import (
	"crypto/tls"
	"errors"
	"net/http"
	"sync"

	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// InsecureTransport is the transport of --insecure-registry, as ko's: it
// does not verify registries' TLS certificates, and it speaks plain http
// to a registry that answers https with http (ggcr itself does that only
// for loopback and private addresses). A host found to speak http is
// remembered, so later calls go to it over http directly. Never the
// default: a man in the middle can read and change everything it carries.
func InsecureTransport() http.RoundTripper {
	tr := remote.DefaultTransport.(*http.Transport).Clone()
	if tr.TLSClientConfig == nil {
		tr.TLSClientConfig = &tls.Config{}
	}
	tr.TLSClientConfig.InsecureSkipVerify = true //nolint:gosec // what --insecure-registry asks for
	return &insecure{inner: tr, plain: map[string]bool{}}
}

type insecure struct {
	inner http.RoundTripper
	mu    sync.Mutex
	plain map[string]bool // hosts (host:port) that speak http
}

var _ http.RoundTripper = (*insecure)(nil)

// RoundTrip implements http.RoundTripper.
func (t *insecure) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "https" && t.isPlain(req.URL.Host) {
		return t.inner.RoundTrip(overHTTP(req))
	}
	resp, err := t.inner.RoundTrip(req)
	var rh tls.RecordHeaderError
	if err == nil || req.URL.Scheme != "https" || !errors.As(err, &rh) || string(rh.RecordHeader[:]) != "HTTP/" {
		return resp, err
	}
	// The server speaks http on this port. A request with a body is sent
	// again only when the body can be had again.
	retry := overHTTP(req)
	if req.Body != nil && req.Body != http.NoBody {
		if req.GetBody == nil {
			return nil, err
		}
		body, gerr := req.GetBody()
		if gerr != nil {
			return nil, err
		}
		retry.Body = body
	}
	t.mu.Lock()
	t.plain[req.URL.Host] = true
	t.mu.Unlock()
	return t.inner.RoundTrip(retry)
}

func (t *insecure) isPlain(host string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.plain[host]
}

// overHTTP is req sent to the same host over http.
func overHTTP(req *http.Request) *http.Request {
	r := req.Clone(req.Context())
	u := *req.URL
	u.Scheme = "http"
	r.URL = &u
	return r
}
