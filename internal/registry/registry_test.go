package registry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"golang.org/x/crypto/bcrypt"

	"github.com/kilnbuild/kiln/internal/registry"
	"github.com/kilnbuild/kiln/internal/store"
	"github.com/kilnbuild/kiln/internal/testutil"
)

type fixture struct {
	dir  string
	st   *store.Layout
	srv  *httptest.Server
	host string
}

func newFixture(t testing.TB, access registry.Access) *fixture {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	// As the server does: small blobs go through the journal.
	if err := st.Repositories().OpenJournal(); err != nil {
		t.Fatal(err)
	}
	reg, err := registry.New(st.Repositories(), registry.Options{Access: access})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(reg)
	t.Cleanup(func() {
		srv.Close()
		reg.Close()
		if err := st.Repositories().CloseJournal(); err != nil {
			t.Error(err)
		}
	})
	return &fixture{dir: dir, st: st, srv: srv, host: strings.TrimPrefix(srv.URL, "http://")}
}

// testToken is a bearer token long enough to be accepted.
const testToken = "tok-0123456789abcdef0123456789abcdef"

func open() registry.Access { return registry.Access{AnonymousWrite: true} }

func (f *fixture) ref(t testing.TB, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(f.host + "/" + s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func randomImage(t testing.TB) v1.Image { return testutil.RandomImage(t, 1024, 3) }

func TestPushPullImageAndIndex(t *testing.T) {
	f := newFixture(t, open())
	img := randomImage(t)
	if err := remote.Write(f.ref(t, "team/app:v1"), img); err != nil {
		t.Fatal(err)
	}
	got, err := remote.Image(f.ref(t, "team/app:v1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(got); err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	if d, _ := got.Digest(); d != want {
		t.Fatalf("digest %s, want %s", d, want)
	}

	idx, err := random.Index(512, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(f.ref(t, "team/app:multi"), idx); err != nil {
		t.Fatal(err)
	}
	gotIdx, err := remote.Index(f.ref(t, "team/app:multi"))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(gotIdx); err != nil {
		t.Fatal(err)
	}

	// The store is an OCI layout: its tags are NAME:TAG ref names.
	if d, err := f.st.Lookup("team/app:v1"); err != nil || d.Digest != want {
		t.Fatalf("layout lookup: %v %v", d.Digest, err)
	}
}

// The CLI writes the store directly; the registry serves what it wrote.
func TestServesWhatTheCLIWrote(t *testing.T) {
	f := newFixture(t, open())
	img := randomImage(t)
	if _, err := f.st.Put(context.Background(), img, []string{"kiln.local/server:latest"}); err != nil {
		t.Fatal(err)
	}
	got, err := remote.Image(f.ref(t, "kiln.local/server:latest"))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(got); err != nil {
		t.Fatal(err)
	}
	h, _ := img.Digest()
	if _, err := remote.Image(f.ref(t, "kiln.local/server@"+h.String())); err != nil {
		t.Fatalf("by digest: %v", err)
	}
	// Another repository does not see it.
	if _, err := remote.Image(f.ref(t, "kiln.local/other@"+h.String())); err == nil {
		t.Fatal("a manifest is visible in a repository it was never pushed to")
	}
}

func TestCrossRepositoryMount(t *testing.T) {
	f := newFixture(t, open())
	img := randomImage(t)
	if err := remote.Write(f.ref(t, "a/src:v1"), img); err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	h, _ := layers[0].Digest()
	post := func(q string) *http.Response {
		resp, err := http.Post(f.srv.URL+"/v2/b/dst/blobs/uploads/?"+q, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := post("mount=" + h.String() + "&from=a/src"); resp.StatusCode != http.StatusCreated || resp.Header.Get("Docker-Content-Digest") != h.String() {
		t.Fatalf("mount: %s %v", resp.Status, resp.Header)
	}
	if _, err := f.st.Repositories().StatBlob("b/dst", h); err != nil {
		t.Fatalf("mounted blob: %v", err)
	}
	// Without from, any repository the client may read is a source.
	if resp := post("mount=" + h.String()); resp.StatusCode != http.StatusCreated {
		t.Fatalf("mount without from: %s", resp.Status)
	}
	// A blob the source does not have falls back to an upload session.
	if resp := post("mount=sha256:" + strings.Repeat("a", 64) + "&from=a/src"); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("unmountable: %s", resp.Status)
	}
}

func do(t testing.TB, method, url string, hdr map[string]string, body []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func digestOf(b []byte) string {
	h, _, _ := v1.SHA256(bytes.NewReader(b))
	return h.String()
}

// Credentials a client sends to a registry that has none configured are
// ignored: it is anonymous, as it would be without them.
func TestCredentialsWithoutAccessRulesAreIgnored(t *testing.T) {
	f := newFixture(t, open())
	img := randomImage(t)
	if err := remote.Write(f.ref(t, "creds/app:v1"), img, remote.WithAuth(&authn.Basic{Username: "someone", Password: "stored"})); err != nil {
		t.Fatalf("push with stray credentials: %v", err)
	}
}

func TestChunkedUploadAndRanges(t *testing.T) {
	f := newFixture(t, open())
	data := bytes.Repeat([]byte("0123456789"), 1000)
	resp := do(t, "POST", f.srv.URL+"/v2/c/blobs/uploads/", nil, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %s", resp.Status)
	}
	loc := f.srv.URL + resp.Header.Get("Location")
	resp = do(t, "PATCH", loc, map[string]string{"Content-Range": "0-4999", "Content-Type": "application/octet-stream"}, data[:5000])
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Range") != "0-4999" {
		t.Fatalf("PATCH 1: %s %q", resp.Status, resp.Header.Get("Range"))
	}
	// A chunk that does not start where the upload ends is refused.
	resp = do(t, "PATCH", loc, map[string]string{"Content-Range": "6000-6999"}, data[6000:7000])
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable || resp.Header.Get("Range") != "0-4999" {
		t.Fatalf("out-of-order chunk: %s %q", resp.Status, resp.Header.Get("Range"))
	}
	resp = do(t, "GET", loc, nil, nil)
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Range") != "0-4999" {
		t.Fatalf("status: %s %q", resp.Status, resp.Header.Get("Range"))
	}
	resp = do(t, "PUT", loc+"?digest="+digestOf(data), map[string]string{"Content-Range": "5000-9999"}, data[5000:])
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %s", resp.Status)
	}
	blob := f.srv.URL + "/v2/c/blobs/" + digestOf(data)
	resp = do(t, "GET", blob, map[string]string{"Range": "bytes=10-19"}, nil)
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusPartialContent || string(got) != "0123456789" {
		t.Fatalf("range: %s %q", resp.Status, got)
	}
	resp = do(t, "HEAD", blob, nil, nil)
	if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(data)) || resp.Header.Get("Docker-Content-Digest") != digestOf(data) {
		t.Fatalf("HEAD: %s %d", resp.Status, resp.ContentLength)
	}
	// The finished upload is gone.
	if resp := do(t, "GET", loc, nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("finished upload: %s", resp.Status)
	}
}

func TestTagsCatalogPagination(t *testing.T) {
	f := newFixture(t, open())
	img := randomImage(t)
	for _, tag := range []string{"c", "a", "b", "d"} {
		if err := remote.Write(f.ref(t, "p/q:"+tag), img); err != nil {
			t.Fatal(err)
		}
	}
	if err := remote.Write(f.ref(t, "p/r:x"), img); err != nil {
		t.Fatal(err)
	}
	var tl struct{ Tags []string }
	resp := do(t, "GET", f.srv.URL+"/v2/p/q/tags/list?n=2", nil, nil)
	json.NewDecoder(resp.Body).Decode(&tl)
	if !slices.Equal(tl.Tags, []string{"a", "b"}) || !strings.Contains(resp.Header.Get("Link"), "last=b") {
		t.Fatalf("page 1: %v %q", tl.Tags, resp.Header.Get("Link"))
	}
	resp = do(t, "GET", f.srv.URL+"/v2/p/q/tags/list?n=2&last=b", nil, nil)
	json.NewDecoder(resp.Body).Decode(&tl)
	if !slices.Equal(tl.Tags, []string{"c", "d"}) {
		t.Fatalf("page 2: %v", tl.Tags)
	}
	var cat struct{ Repositories []string }
	resp = do(t, "GET", f.srv.URL+"/v2/_catalog", nil, nil)
	json.NewDecoder(resp.Body).Decode(&cat)
	if !slices.Equal(cat.Repositories, []string{"p/q", "p/r"}) {
		t.Fatalf("catalog: %v", cat.Repositories)
	}
	if resp := do(t, "GET", f.srv.URL+"/v2/nope/tags/list", nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown repository: %s", resp.Status)
	}
}

func TestReferrersAndDelete(t *testing.T) {
	f := newFixture(t, open())
	img := randomImage(t)
	subjectRef := f.ref(t, "r/app:v1")
	if err := remote.Write(subjectRef, img); err != nil {
		t.Fatal(err)
	}
	subject, _ := img.Digest()
	desc, _ := remote.Head(subjectRef)
	for i, at := range []string{"application/vnd.example.sbom", "application/vnd.example.sig"} {
		art := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
		art = mutate.ConfigMediaType(art, types.MediaType(at))
		art, _ = mutate.Append(art, mutate.Addendum{Layer: static.NewLayer([]byte(fmt.Sprint(i)), "text/plain")})
		art = mutate.Subject(art, *desc).(v1.Image)
		d, _ := art.Digest()
		if err := remote.Write(f.ref(t, "r/app@"+d.String()), art); err != nil {
			t.Fatal(err)
		}
	}
	idx, err := remote.Referrers(f.ref(t, "r/app@"+subject.String()).(name.Digest))
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	if len(im.Manifests) != 2 {
		t.Fatalf("referrers: %d, want 2", len(im.Manifests))
	}
	resp := do(t, "GET", f.srv.URL+"/v2/r/app/referrers/"+subject.String()+"?artifactType=application/vnd.example.sig", nil, nil)
	var filtered v1.IndexManifest
	json.NewDecoder(resp.Body).Decode(&filtered)
	if len(filtered.Manifests) != 1 || filtered.Manifests[0].ArtifactType != "application/vnd.example.sig" || resp.Header.Get("OCI-Filters-Applied") != "artifactType" {
		t.Fatalf("filtered: %+v %v", filtered.Manifests, resp.Header)
	}

	// Deleting the subject by digest drops its tag too.
	if resp := do(t, "DELETE", f.srv.URL+"/v2/r/app/manifests/"+subject.String(), nil, nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("delete: %s", resp.Status)
	}
	if resp := do(t, "GET", f.srv.URL+"/v2/r/app/manifests/v1", nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("tag after delete: %s", resp.Status)
	}
	layers, _ := img.Layers()
	lh, _ := layers[0].Digest()
	if resp := do(t, "DELETE", f.srv.URL+"/v2/r/app/blobs/"+lh.String(), nil, nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("delete blob: %s", resp.Status)
	}
	if resp := do(t, "GET", f.srv.URL+"/v2/r/app/blobs/"+lh.String(), nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("blob after delete: %s", resp.Status)
	}
}

type wireError struct {
	Errors []struct{ Code string }
}

// blobFiles lists what the store holds on disk, to prove that refused
// requests wrote nothing.
func blobFiles(t testing.TB, dir string) []string {
	t.Helper()
	var files []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasSuffix(p, ".lock") {
			files = append(files, strings.TrimPrefix(p, dir))
		}
		return nil
	})
	return files
}

func TestBadInput(t *testing.T) {
	f := newFixture(t, open())
	img := randomImage(t)
	if err := remote.Write(f.ref(t, "ok/app:v1"), img); err != nil {
		t.Fatal(err)
	}
	manifest, _ := img.RawManifest()
	oci := map[string]string{"Content-Type": string(types.DockerManifestSchema2)}
	m, _ := img.Manifest()
	m.Layers[0].Digest = v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}
	missing, _ := json.Marshal(m)
	huge := append([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[],"annotations":{"x":"`), bytes.Repeat([]byte("a"), store.MaxManifestBytes)...)
	huge = append(huge, `"}}`...)
	zero := "sha256:" + strings.Repeat("0", 64)
	for _, tc := range []struct {
		name, method, path string
		hdr                map[string]string
		body               []byte
		status             int
		code               string
	}{
		{"malformed digest in blob GET", "GET", "/v2/ok/app/blobs/sha256:xyz", nil, nil, 400, "DIGEST_INVALID"},
		{"unsupported algorithm", "GET", "/v2/ok/app/blobs/md5:" + strings.Repeat("0", 32), nil, nil, 400, "DIGEST_INVALID"},
		{"malformed digest in upload", "POST", "/v2/ok/app/blobs/uploads/?digest=sha256:nothex", nil, []byte("x"), 400, "DIGEST_INVALID"},
		{"monolithic upload, wrong digest", "POST", "/v2/ok/app/blobs/uploads/?digest=" + zero, nil, []byte("hello"), 400, "DIGEST_INVALID"},
		{"path traversal", "GET", "/v2/../etc/manifests/latest", nil, nil, 400, "NAME_INVALID"},
		{"path traversal inside", "PUT", "/v2/ok/../../x/manifests/v1", oci, manifest, 400, "NAME_INVALID"},
		{"upper-case name", "GET", "/v2/Ok/App/tags/list", nil, nil, 400, "NAME_INVALID"},
		{"name too long", "GET", "/v2/" + strings.Repeat("a", 256) + "/tags/list", nil, nil, 400, "NAME_INVALID"},
		{"invalid tag", "PUT", "/v2/ok/app/manifests/-bad", oci, manifest, 400, "MANIFEST_INVALID"},
		{"oversized manifest", "PUT", "/v2/ok/app/manifests/big", map[string]string{"Content-Type": string(types.OCIImageIndex)}, huge, 413, "MANIFEST_INVALID"},
		{"invalid JSON", "PUT", "/v2/ok/app/manifests/v2", oci, []byte("{not json"), 400, "MANIFEST_INVALID"},
		{"wrong content type", "PUT", "/v2/ok/app/manifests/v2", map[string]string{"Content-Type": "application/json"}, manifest, 400, "MANIFEST_INVALID"},
		{"unknown media type", "PUT", "/v2/ok/app/manifests/v2", map[string]string{"Content-Type": "text/plain"}, []byte(`{"schemaVersion":2,"config":{}}`), 400, "MANIFEST_INVALID"},
		{"schema version 1", "PUT", "/v2/ok/app/manifests/v2", oci, []byte(`{"schemaVersion":1}`), 400, "MANIFEST_INVALID"},
		{"manifest digest mismatch", "PUT", "/v2/ok/app/manifests/" + zero, oci, manifest, 400, "DIGEST_INVALID"},
		{"missing layer", "PUT", "/v2/ok/app/manifests/v2", oci, missing, 400, "MANIFEST_BLOB_UNKNOWN"},
		{"blob of another repository", "PUT", "/v2/other/app/manifests/v1", oci, manifest, 400, "MANIFEST_BLOB_UNKNOWN"},
		{"unknown upload id", "PATCH", "/v2/ok/app/blobs/uploads/0123456789abcdef", nil, []byte("x"), 404, "BLOB_UPLOAD_UNKNOWN"},
		{"unknown upload id, PUT", "PUT", "/v2/ok/app/blobs/uploads/nope?digest=" + zero, nil, nil, 404, "BLOB_UPLOAD_UNKNOWN"},
		{"unknown upload id, traversal", "GET", "/v2/ok/app/blobs/uploads/%2e%2e", nil, nil, 404, "BLOB_UPLOAD_UNKNOWN"},
		{"unknown manifest", "GET", "/v2/ok/app/manifests/nope", nil, nil, 404, "MANIFEST_UNKNOWN"},
		{"unknown blob", "GET", "/v2/ok/app/blobs/" + zero, nil, nil, 404, "BLOB_UNKNOWN"},
		{"delete unknown manifest", "DELETE", "/v2/ok/app/manifests/" + zero, nil, nil, 404, "MANIFEST_UNKNOWN"},
		{"unsupported method", "POST", "/v2/ok/app/manifests/v1", nil, nil, 405, "UNSUPPORTED"},
		{"unknown endpoint", "GET", "/v2/ok/app/nothing/here", nil, nil, 404, "NAME_UNKNOWN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := blobFiles(t, f.dir)
			resp := do(t, tc.method, f.srv.URL+tc.path, tc.hdr, tc.body)
			var we wireError
			json.NewDecoder(resp.Body).Decode(&we)
			if resp.StatusCode != tc.status || len(we.Errors) != 1 || we.Errors[0].Code != tc.code {
				t.Fatalf("got %s %+v, want %d %s", resp.Status, we, tc.status, tc.code)
			}
			if after := blobFiles(t, f.dir); !slices.Equal(before, after) {
				t.Fatalf("a refused request changed the store:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

func TestAccess(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, registry.Access{
		Users:   map[string][]byte{"alice": hash},
		Tokens:  []string{testToken},
		Private: []string{"secret/*"},
	})
	img := randomImage(t)
	alice := remote.WithAuth(&authn.Basic{Username: "alice", Password: "s3cret"})
	token := remote.WithAuth(&authn.Bearer{Token: testToken})

	if err := remote.Write(f.ref(t, "public/app:v1"), img); err == nil {
		t.Fatal("anonymous push accepted")
	}
	if err := remote.Write(f.ref(t, "public/app:v1"), img, remote.WithAuth(&authn.Basic{Username: "alice", Password: "wrong"})); err == nil {
		t.Fatal("push with a wrong password accepted")
	}
	if err := remote.Write(f.ref(t, "public/app:v1"), img, alice); err != nil {
		t.Fatalf("push with basic auth: %v", err)
	}
	if err := remote.Write(f.ref(t, "secret/app:v1"), img, token); err != nil {
		t.Fatalf("push with a bearer token: %v", err)
	}
	if _, err := remote.Image(f.ref(t, "public/app:v1")); err != nil {
		t.Fatalf("anonymous pull of a public repository: %v", err)
	}
	if _, err := remote.Image(f.ref(t, "secret/app:v1")); err == nil {
		t.Fatal("anonymous pull of a private repository accepted")
	}
	if _, err := remote.Image(f.ref(t, "secret/app:v1"), alice); err != nil {
		t.Fatalf("pull of a private repository with credentials: %v", err)
	}
	resp := do(t, "GET", f.srv.URL+"/v2/", nil, nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") {
		t.Fatalf("/v2/ without credentials: %s %v", resp.Status, resp.Header)
	}
	var cat struct{ Repositories []string }
	json.NewDecoder(do(t, "GET", f.srv.URL+"/v2/_catalog", nil, nil).Body).Decode(&cat)
	if !slices.Equal(cat.Repositories, []string{"public/app"}) {
		t.Fatalf("anonymous catalog lists %v", cat.Repositories)
	}
	// Mounting from a private repository needs read access to it.
	layers, _ := img.Layers()
	lh, _ := layers[0].Digest()
	resp = do(t, "POST", f.srv.URL+"/v2/secret/app/blobs/uploads/?mount="+lh.String()+"&from=secret/app", nil, nil)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous mount: %s", resp.Status)
	}
}

func TestAccessValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		a    registry.Access
		want string
	}{
		{"private without credentials", registry.Access{Private: []string{"x/*"}}, "need credentials"},
		{"bad pattern", registry.Access{Private: []string{"["}, Tokens: []string{testToken}}, "pattern"},
		{"** inside a pattern", registry.Access{Private: []string{"a/**/b"}, Tokens: []string{testToken}}, "last segment"},
		{"empty segment", registry.Access{Private: []string{"a//b"}, Tokens: []string{testToken}}, "empty segment"},
		{"short token", registry.Access{Tokens: []string{"tok-123"}}, "at least 32"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.a.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestReadHtpasswd(t *testing.T) {
	dir := t.TempDir()
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	for _, tc := range []struct{ name, content, want string }{
		{"bcrypt", "# users\nalice:" + string(hash) + "\n", ""},
		{"md5 is refused", "bob:$apr1$abc$def\n", "only bcrypt"},
		{"no colon", "carol\n", "want user:bcrypt-hash"},
		{"empty", "\n", "no users"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name)
			os.WriteFile(p, []byte(tc.content), 0o600)
			_, err := registry.ReadHtpasswd(p)
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// Fifty clients push and pull distinct and identical content at once:
// every digest reads back, no tag is lost.
func TestConcurrentClients(t *testing.T) {
	f := newFixture(t, open())
	shared := randomImage(t)
	const clients = 50
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own, err := random.Image(256, 1)
			if err != nil {
				errs <- err
				return
			}
			for j, img := range []v1.Image{own, shared} {
				ref, _ := name.ParseReference(fmt.Sprintf("%s/load/r%d:t%d", f.host, i%5, i*2+j))
				if err := remote.Write(ref, img); err != nil {
					errs <- fmt.Errorf("client %d push: %w", i, err)
					return
				}
				got, err := remote.Image(ref)
				if err != nil {
					errs <- fmt.Errorf("client %d pull: %w", i, err)
					return
				}
				if err := validate.Image(got); err != nil {
					errs <- fmt.Errorf("client %d: %w", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	total := 0
	for r := range 5 {
		tags, err := f.st.Repositories().Tags(fmt.Sprintf("load/r%d", r))
		if err != nil {
			t.Fatal(err)
		}
		total += len(tags)
	}
	if total != 2*clients {
		t.Fatalf("%d tags survived, want %d", total, 2*clients)
	}
}

// A client that dies mid-upload leaves nothing visible; the push can be
// redone, and the stale upload goes with the next restart or gc.
func TestClientKilledMidUpload(t *testing.T) {
	f := newFixture(t, open())
	data := bytes.Repeat([]byte("kiln"), 1<<18) // 1 MiB
	resp := do(t, "POST", f.srv.URL+"/v2/dead/client/blobs/uploads/", nil, nil)
	loc := resp.Header.Get("Location")
	conn, err := net.Dial("tcp", f.host)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", loc, f.host, len(data))
	conn.Write(data[:len(data)/3])
	conn.Close() // the client dies
	blob := f.srv.URL + "/v2/dead/client/blobs/" + digestOf(data)
	if got := do(t, "HEAD", blob, nil, nil).StatusCode; got != http.StatusNotFound {
		t.Fatalf("HEAD of a half-sent blob: %d", got)
	}
	resp = do(t, "POST", f.srv.URL+"/v2/dead/client/blobs/uploads/?digest="+digestOf(data), nil, data)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("redoing the upload: %s", resp.Status)
	}
	if got := do(t, "HEAD", blob, nil, nil).StatusCode; got != http.StatusOK {
		t.Fatalf("HEAD after the redo: %d", got)
	}
	// A restarted registry starts without the dead upload.
	reg, err := registry.New(f.st.Repositories(), registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	reg.Close()
	if ups, _ := os.ReadDir(filepath.Join(f.dir, "uploads")); len(ups) != 0 {
		t.Fatalf("%d uploads survive a restart", len(ups))
	}
}
