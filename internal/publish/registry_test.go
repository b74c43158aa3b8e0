package publish_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/kilnbuild/kiln/internal/publish"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// recorder wraps a registry and counts requests.
type recorder struct {
	h        http.Handler
	mu       sync.Mutex
	uploads  int // POST/PUT/PATCH to /blobs/uploads/
	requests int
	// deny answers blob uploads with this status instead of passing them on.
	deny int
}

func isUpload(r *http.Request) bool {
	return strings.Contains(r.URL.Path, "/blobs/uploads/") &&
		(r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch)
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec.mu.Lock()
	rec.requests++
	up := isUpload(r)
	if up {
		rec.uploads++
	}
	deny := rec.deny
	rec.mu.Unlock()
	if up && deny != 0 {
		w.WriteHeader(deny)
		w.Write([]byte(`{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}`))
		return
	}
	rec.h.ServeHTTP(w, r)
}

func (rec *recorder) counts() (uploads, requests int) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.uploads, rec.requests
}

func (rec *recorder) reset() {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.uploads, rec.requests = 0, 0
}

// newRegistry starts an in-process registry; repo is a repository in it.
func newRegistry(t *testing.T) (rec *recorder, repo string) {
	t.Helper()
	rec = &recorder{h: testutil.QuietRegistry()}
	return rec, testutil.Serve(t, rec) + "/team/app"
}

// anonymous keeps the tests away from ~/.docker/config.json.
var anonymous = authn.NewMultiKeychain()

func resolve(t *testing.T, ref string) v1.Hash {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Head(r)
	if err != nil {
		t.Fatalf("HEAD %s: %v", ref, err)
	}
	return desc.Digest
}

func TestRegistryPublish(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		a    publish.Artifact
	}{
		{"image", randomImage(t)},
		{"index", randomIndex(t)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, repo := newRegistry(t)
			p := &publish.ToRegistry{Repo: repo, Keychain: anonymous, Jobs: 2}
			if err := p.Check(ctx); err != nil {
				t.Fatalf("Check: %v", err)
			}
			want := testutil.Digest(t, tc.a)
			d, err := p.Publish(ctx, tc.a, repo, []string{"v1", "latest"})
			if err != nil {
				t.Fatal(err)
			}
			if d.String() != repo+"@"+want.String() {
				t.Errorf("Publish = %s, want %s@%s", d, repo, want)
			}
			for _, tag := range []string{"v1", "latest"} {
				if got := resolve(t, repo+":"+tag); got != want {
					t.Errorf("%s resolves to %s, want %s", tag, got, want)
				}
			}
			switch tc.a.(type) {
			case v1.ImageIndex:
				back, err := remote.Index(d)
				if err != nil {
					t.Fatal(err)
				}
				if err := validate.Index(back); err != nil {
					t.Errorf("validate.Index: %v", err)
				}
			case v1.Image:
				back, err := remote.Image(d)
				if err != nil {
					t.Fatal(err)
				}
				if err := validate.Image(back); err != nil {
					t.Errorf("validate.Image: %v", err)
				}
			}
			if err := p.Close(ctx); err != nil {
				t.Fatal(err)
			}

			first, _ := rec.counts()
			if first == 0 {
				t.Fatal("the first push uploaded no blob: the counter is broken")
			}
			rec.reset()
			d2, err := p.Publish(ctx, tc.a, repo, []string{"v2"})
			if err != nil {
				t.Fatal(err)
			}
			if d2 != d {
				t.Errorf("second Publish = %s, want %s", d2, d)
			}
			if again, _ := rec.counts(); again != 0 {
				t.Errorf("second push of the same %s sent %d blob upload requests (first: %d)", tc.name, again, first)
			}
			if got := resolve(t, repo+":v2"); got != want {
				t.Errorf("v2 resolves to %s, want %s", got, want)
			}
		})
	}
}

func TestRegistryPublishDefaultTag(t *testing.T) {
	_, repo := newRegistry(t)
	img := randomImage(t)
	p := &publish.ToRegistry{Repo: repo, Keychain: anonymous}
	if _, err := p.Publish(context.Background(), img, repo, nil); err != nil {
		t.Fatal(err)
	}
	if got := resolve(t, repo+":latest"); got != testutil.Digest(t, img) {
		t.Errorf("latest = %s, want %s", got, testutil.Digest(t, img))
	}
}

// A bad tag anywhere in the list fails before anything is sent.
func TestRegistryPublishBadTag(t *testing.T) {
	rec, repo := newRegistry(t)
	p := &publish.ToRegistry{Repo: repo, Keychain: anonymous}
	_, err := p.Publish(context.Background(), randomImage(t), repo, []string{"v1", "not a tag"})
	if err == nil || !strings.Contains(err.Error(), "not a tag") {
		t.Fatalf("Publish = %v, want an invalid-name error", err)
	}
	if _, n := rec.counts(); n != 0 {
		t.Errorf("%d requests sent before the bad tag was noticed", n)
	}
}

func TestRegistryPublishCanceled(t *testing.T) {
	_, repo := newRegistry(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p := &publish.ToRegistry{Repo: repo, Keychain: anonymous}
	_, err := p.Publish(ctx, randomImage(t), repo, []string{"v1"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Publish = %v, want an error that is context.Canceled", err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error runs over several lines: %q", err)
	}
}

func TestRegistryCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		deny int
		repo func(repo string) string
		is   error
		want string
	}{
		{name: "writable", repo: func(r string) string { return r }},
		{name: "401 on upload", deny: http.StatusUnauthorized, repo: func(r string) string { return r }, is: publish.ErrNotWritable, want: "cannot push to"},
		{name: "403 on upload", deny: http.StatusForbidden, repo: func(r string) string { return r }, is: publish.ErrNotWritable, want: "cannot push to"},
		{name: "invalid repository", repo: func(r string) string { return r + "/UPPER" }, want: "repository can only contain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, repo := newRegistry(t)
			rec.deny = tc.deny
			p := &publish.ToRegistry{Repo: tc.repo(repo), Keychain: anonymous}
			err := p.Check(context.Background())
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Check = %v", err)
				}
				if up, _ := rec.counts(); up == 0 {
					t.Errorf("Check did not try an upload")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.is != nil && !errors.Is(err, tc.is)) {
				t.Fatalf("Check = %v, want an error containing %q (is %v)", err, tc.want, tc.is)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error runs over several lines: %q", err)
			}
		})
	}
}
