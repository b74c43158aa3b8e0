package registry_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/crypto/bcrypt"

	"github.com/kilnbuild/kiln/internal/registry"
	"github.com/kilnbuild/kiln/internal/store"
)

// --private 'team/*' covers every repository below team/, at every depth,
// on every endpoint and in the catalog.
func TestPrivatePatternCoversNestedNames(t *testing.T) {
	f := newFixture(t, registry.Access{Tokens: []string{testToken}, Private: []string{"team/*"}, AnonymousWrite: true})
	token := remote.WithAuth(&authn.Bearer{Token: testToken})
	img := randomImage(t)
	for _, repo := range []string{"team/app", "team/secret/nested", "public/app"} {
		if err := remote.Write(f.ref(t, repo+":v1"), img, token); err != nil {
			t.Fatal(err)
		}
	}
	// A referrer, so that the referrers endpoint has something to leak.
	desc, err := remote.Head(f.ref(t, "team/secret/nested:v1"), token)
	if err != nil {
		t.Fatal(err)
	}
	art := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	art = mutate.ConfigMediaType(art, "application/vnd.example.sbom")
	art, _ = mutate.Append(art, mutate.Addendum{Layer: static.NewLayer([]byte("sbom"), "text/plain")})
	art = mutate.Subject(art, *desc).(v1.Image)
	ad, _ := art.Digest()
	if err := remote.Write(f.ref(t, "team/secret/nested@"+ad.String()), art, token); err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	blob, _ := layers[0].Digest()
	img0, _ := img.Digest()
	for _, repo := range []string{"team/app", "team/secret/nested", "team/a/b/c/d", "public/app"} {
		private := repo != "public/app"
		for _, ep := range []struct{ method, path string }{
			{"GET", "/tags/list"},
			{"GET", "/manifests/v1"},
			{"HEAD", "/manifests/v1"},
			{"GET", "/manifests/" + img0.String()},
			{"GET", "/blobs/" + blob.String()},
			{"HEAD", "/blobs/" + blob.String()},
			{"POST", "/blobs/uploads/"},
			{"POST", "/blobs/uploads/?mount=" + blob.String() + "&from=public/app"},
			{"GET", "/referrers/" + desc.Digest.String()},
		} {
			t.Run(repo+" "+ep.method+" "+ep.path, func(t *testing.T) {
				resp := do(t, ep.method, f.srv.URL+"/v2/"+repo+ep.path, nil, nil)
				if got := resp.StatusCode == http.StatusUnauthorized; got != private {
					t.Fatalf("anonymous %s %s: %s (private: %v)", ep.method, repo+ep.path, resp.Status, private)
				}
			})
		}
	}
	var cat struct{ Repositories []string }
	json.NewDecoder(do(t, "GET", f.srv.URL+"/v2/_catalog", nil, nil).Body).Decode(&cat)
	if !slices.Equal(cat.Repositories, []string{"public/app"}) {
		t.Fatalf("anonymous catalog lists %v, want only public/app", cat.Repositories)
	}
	cat.Repositories = nil
	json.NewDecoder(do(t, "GET", f.srv.URL+"/v2/_catalog", map[string]string{"Authorization": "Bearer " + testToken}, nil).Body).Decode(&cat)
	if !slices.Equal(cat.Repositories, []string{"public/app", "team/app", "team/secret/nested"}) {
		t.Fatalf("authenticated catalog lists %v", cat.Repositories)
	}
}

func TestMatchRepository(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"team/*", "team/app", true},
		{"team/*", "team/secret/nested", true},
		{"team/*", "team", false},
		{"team/*", "teamx/app", false},
		{"team/**", "team/a/b", true},
		{"team", "team", true},
		{"team", "team/app", false},
		{"*", "anything/at/all", true},
		{"*/secret", "a/secret", true},
		{"*/secret", "a/b/secret", false},
		{"team/app-*", "team/app-x", true},
		{"team/app-*", "team/app-x/y", false},
		{"team/?pp", "team/app", true},
		{"team/[ab]*/x", "team/b1/x", true},
	} {
		if got := registry.MatchRepository(tc.pattern, tc.name); got != tc.want {
			t.Errorf("MatchRepository(%q, %q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
}

// A chunk's Content-Range must say exactly where the body goes: its end is
// start+len(body)-1, or the chunk is refused with 416 and nothing of it
// is kept.
func TestContentRangeMustMatchBody(t *testing.T) {
	f := newFixture(t, open())
	for _, tc := range []struct {
		name    string
		rng     string
		body    int
		chunked bool
		status  int
	}{
		{"exact", "0-9", 10, false, http.StatusAccepted},
		{"end beyond the body", "0-12", 10, false, http.StatusRequestedRangeNotSatisfiable},
		{"end short of the body", "0-4", 10, false, http.StatusRequestedRangeNotSatisfiable},
		{"exact, chunked", "0-9", 10, true, http.StatusAccepted},
		{"end beyond the body, chunked", "0-12", 10, true, http.StatusRequestedRangeNotSatisfiable},
		{"end short of the body, chunked", "0-4", 10, true, http.StatusRequestedRangeNotSatisfiable},
		{"negative start", "-1-8", 10, false, http.StatusRequestedRangeNotSatisfiable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := do(t, "POST", f.srv.URL+"/v2/rng/app/blobs/uploads/", nil, nil)
			loc := f.srv.URL + resp.Header.Get("Location")
			var body io.Reader = strings.NewReader(strings.Repeat("x", tc.body))
			if tc.chunked {
				body = io.MultiReader(body) // length unknown: sent chunked
			}
			req, _ := http.NewRequest("PATCH", loc, body)
			req.Header.Set("Content-Range", tc.rng)
			req.Header.Set("Content-Type", "application/octet-stream")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var we wireError
			json.NewDecoder(resp.Body).Decode(&we)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("PATCH Content-Range %s with %d bytes: %s, want %d", tc.rng, tc.body, resp.Status, tc.status)
			}
			if tc.status == http.StatusRequestedRangeNotSatisfiable && (len(we.Errors) != 1 || we.Errors[0].Code != "BLOB_UPLOAD_INVALID") {
				t.Fatalf("error body %+v, want BLOB_UPLOAD_INVALID", we)
			}
		})
	}
}

func TestBearerSchemeIsCaseInsensitive(t *testing.T) {
	f := newFixture(t, registry.Access{Tokens: []string{testToken}})
	for _, scheme := range []string{"Bearer", "bearer", "BEARER", "bEaReR"} {
		resp := do(t, "GET", f.srv.URL+"/v2/", map[string]string{"Authorization": scheme + " " + testToken}, nil)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s scheme: %s", scheme, resp.Status)
		}
	}
	if resp := do(t, "GET", f.srv.URL+"/v2/", map[string]string{"Authorization": "bearer " + testToken + "x"}, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong token: %s", resp.Status)
	}
}

func TestReadTokens(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("a", 32)
	for _, tc := range []struct{ name, content, want string }{
		{"long enough", "# tokens\n" + long + "\n\n" + strings.Repeat("b", 64) + "\n", ""},
		{"one character", "# tokens\n\nx\n", ":3: the token is 1 characters"},
		{"31 characters", long + "\n" + long[:31] + "\n", ":2: the token is 31 characters, tokens need at least 32"},
		{"empty", "# nothing\n", "no tokens"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name)
			os.WriteFile(p, []byte(tc.content), 0o600)
			_, err := registry.ReadTokens(p)
			if (tc.want == "") != (err == nil) || (err != nil && (!strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n"))) {
				t.Fatalf("got %v, want one line containing %q", err, tc.want)
			}
		})
	}
}

func TestSecretFileWarning(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		mode os.FileMode
		warn bool
	}{{0o600, false}, {0o400, false}, {0o640, true}, {0o604, true}, {0o644, true}} {
		p := filepath.Join(dir, fmt.Sprintf("tokens-%o", tc.mode))
		os.WriteFile(p, []byte("x"), 0o600)
		os.Chmod(p, tc.mode)
		if got := registry.SecretFileWarning(p); (got != "") != tc.warn {
			t.Errorf("mode %04o: warning %q, want one: %v", tc.mode, got, tc.warn)
		}
	}
}

// authRegistry is a registry with user alice whose password checks go
// through compare, served over httptest.
func authRegistry(t *testing.T, lim registry.Limits, compare func(hash, pw []byte) error) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.New(st.Repositories(), registry.Options{Access: registry.Access{Users: map[string][]byte{"alice": hash}}, Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	registry.SetCompare(reg, compare)
	srv := httptest.NewServer(reg)
	t.Cleanup(func() { srv.Close(); reg.Close() })
	return srv.URL
}

// An unknown user costs the same bcrypt comparison as a known one: the
// time of an answer does not tell which users exist.
func TestUnknownUserCostsOneComparison(t *testing.T) {
	var calls atomic.Int32
	url := authRegistry(t, registry.Limits{FailedLogins: 100}, func(hash, pw []byte) error {
		calls.Add(1)
		if c, err := bcrypt.Cost(hash); err != nil || c != bcrypt.MinCost {
			t.Errorf("compared against a hash of cost %d (%v), want the users' cost %d", c, err, bcrypt.MinCost)
		}
		return bcrypt.CompareHashAndPassword(hash, pw)
	})
	for _, tc := range []struct{ user, pass string }{{"alice", "wrong"}, {"mallory", "wrong"}, {"", "x"}} {
		calls.Store(0)
		req, _ := http.NewRequest("GET", url+"/v2/", nil)
		req.SetBasicAuth(tc.user, tc.pass)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || calls.Load() != 1 {
			t.Errorf("user %q: %s after %d bcrypt comparisons, want 401 after 1", tc.user, resp.Status, calls.Load())
		}
	}
}

// At most Limits.PasswordChecks bcrypt comparisons run at once, however
// many clients send passwords.
func TestPasswordChecksAreBounded(t *testing.T) {
	const bound, clients = 2, 8
	var active, most atomic.Int32
	entered := make(chan struct{}, clients)
	release := make(chan struct{})
	url := authRegistry(t, registry.Limits{PasswordChecks: bound, FailedLogins: 100}, func(hash, pw []byte) error {
		n := active.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		entered <- struct{}{}
		<-release
		active.Add(-1)
		return errors.New("no")
	})
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("GET", url+"/v2/", nil)
			req.SetBasicAuth(fmt.Sprintf("user%d", i), "pw")
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	for range bound {
		<-entered
	}
	close(release)
	wg.Wait()
	if m := most.Load(); m > bound {
		t.Fatalf("%d password checks ran at once, want at most %d", m, bound)
	}
}

func TestClientOf(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:5000":            "127.0.0.1",
		"[2001:db8:1:2:3:4:5:6]:80": "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:80": "2001:db8:1:2::/64",
		"[::1]:80":                  "::/64",
		"not-an-address":            "not-an-address",
	} {
		req := httptest.NewRequest("GET", "/v2/", nil)
		req.RemoteAddr = addr
		if got := registry.ClientOf(req); got != want {
			t.Errorf("client of %s = %s, want %s", addr, got, want)
		}
	}
}
