package checked

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Manifests is Blobs whose manifests are read apart from their other
// blobs, as a registry's are. Image and Index read manifests and indexes
// through it when b has it.
type Manifests interface {
	Manifest(h v1.Hash) (io.ReadCloser, error)
}

// Remote is a repository in a registry as Blobs, read through
// go-containerregistry's remote package, which already checks every manifest
// fetched by digest and every blob against its digest and size; Remote adds
// the bounds: a manifest response larger than MaxJSON is cut off with
// ErrTooLarge (Transport), and configs are read through Image, at most MaxJSON.
type Remote struct {
	Repo    name.Repository
	Options []remote.Option // each request's; Transport's bound goes last

	mu    sync.Mutex
	known map[v1.Hash][]byte // manifests already fetched, checked again on use
}

var (
	_ Blobs     = (*Remote)(nil)
	_ Manifests = (*Remote)(nil)
)

// Get fetches ref's manifest, bounded, and returns its descriptor (its
// digest that of the bytes received, or the one asked for, checked);
// Image and Index then read it from r without asking again.
func (r *Remote) Get(ref name.Reference) (v1.Descriptor, error) {
	d, err := remote.Get(ref, r.Options...)
	if err != nil {
		return v1.Descriptor{}, err
	}
	r.mu.Lock()
	if r.known == nil {
		r.known = map[v1.Hash][]byte{}
	}
	r.known[d.Digest] = d.Manifest
	r.mu.Unlock()
	return d.Descriptor, nil
}

// Manifest implements Manifests.
func (r *Remote) Manifest(h v1.Hash) (io.ReadCloser, error) {
	r.mu.Lock()
	raw, ok := r.known[h]
	r.mu.Unlock()
	if !ok {
		d, err := remote.Get(r.Repo.Digest(h.String()), r.Options...)
		if err != nil {
			return nil, err
		}
		raw = d.Manifest
	}
	return io.NopCloser(bytes.NewReader(raw)), nil
}

// Blob implements Blobs.
func (r *Remote) Blob(h v1.Hash) (io.ReadCloser, error) {
	l, err := remote.Layer(r.Repo.Digest(h.String()), r.Options...)
	if err != nil {
		return nil, err
	}
	return l.Compressed()
}

// Transport bounds what rt returns for a manifest or a referrers list (a
// GET of /v2/…/manifests/… or /v2/…/referrers/…) at MaxJSON bytes: a larger answer fails with ErrTooLarge
// before it is read whole. rt nil means remote.DefaultTransport.
func Transport(rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		rt = remote.DefaultTransport
	}
	return boundManifests{rt}
}

type boundManifests struct{ rt http.RoundTripper }

func (b boundManifests) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := b.rt.RoundTrip(req)
	p := req.URL.Path
	if err != nil || req.Method != http.MethodGet || !strings.Contains(p, "/manifests/") && !strings.Contains(p, "/referrers/") {
		return resp, err
	}
	if resp.ContentLength > MaxJSON {
		resp.Body.Close()
		return nil, fmt.Errorf("manifest %s: %d bytes: %w of %d bytes", req.URL.Path, resp.ContentLength, ErrTooLarge, MaxJSON)
	}
	resp.Body = &bounded{rc: resp.Body, left: MaxJSON, path: req.URL.Path}
	return resp, nil
}

// bounded fails a read past its budget.
type bounded struct {
	rc   io.ReadCloser
	left int64
	path string
}

func (b *bounded) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, fmt.Errorf("manifest %s: %w of %d bytes", b.path, ErrTooLarge, MaxJSON)
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return 0, fmt.Errorf("manifest %s: %w of %d bytes", b.path, ErrTooLarge, MaxJSON)
	}
	return n, err
}

func (b *bounded) Close() error { return b.rc.Close() }
