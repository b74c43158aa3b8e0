package e2e

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/dirhash"
	"golang.org/x/mod/sumdb/note"
	modzip "golang.org/x/mod/zip"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/kilnbuild/kiln/internal/buildrecord"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// The four kinds of source, each built by a real server. The git
// repository and the module proxy with its checksum database are served
// by the test on loopback.

const helloPackages = `"packages":["./cmd/hello"],"platforms":["linux/amd64"]`

// TestServiceUploadSource uploads a tar.gz of a module with POST
// /api/v1/sources and builds it by its upload ID.
func TestServiceUploadSource(t *testing.T) {
	p := startService(t, nil)
	var up struct{ Upload string }
	resp, raw := p.do("POST", "/api/v1/sources", "application/gzip", tarGz(t, testutil.HelloModule), &up)
	if resp.StatusCode != http.StatusCreated || up.Upload == "" {
		t.Fatalf("POST /api/v1/sources = %s: %s", resp.Status, raw)
	}
	b := p.succeeded(p.submit(`{"source":{"upload":"` + up.Upload + `"},` + helloPackages + `}`).ID)
	if b.Source.Kind != "upload" || !strings.HasPrefix(b.Source.Hash, "sha256:") {
		t.Errorf("source recorded as %+v, want an upload with its sha256", b.Source)
	}
	checkPulled(t, b)
}

// TestServiceGitSource builds a commit of a repository served by git's
// own http-backend, by branch name; the record holds the commit.
func TestServiceGitSource(t *testing.T) {
	repo := testutil.NewGitRepo(t)
	p := startService(t, nil, "--git-allow", "127.0.0.1")
	commit := repo.Commit(testutil.HelloModule, "hello")
	_, url := repo.Serve("hello")

	b := p.succeeded(p.submit(`{"source":{"git":{"url":"` + url + `","ref":"main"}},` + helloPackages + `}`).ID)
	if b.Source.Kind != "git" || b.Source.Revision != commit {
		t.Errorf("source recorded as %+v, want git at %s", b.Source, commit)
	}
	checkPulled(t, b)
}

// TestServiceModuleSource builds a released module version that nobody
// checked out: fetched through a module proxy and checked against a
// checksum database, both served by the test and given to the server as
// GOPROXY and GOSUMDB.
func TestServiceModuleSource(t *testing.T) {
	files := map[string]string{}
	for name, body := range testutil.HelloModule {
		if !strings.HasPrefix(name, "broken/") { // a module zip holds what builds
			files[name] = body
		}
	}
	mods := serveModule(t, "example.com/hello", "v1.2.3", files)
	// GOPATH of its own: the go command remembers the checksum
	// database's latest tree under GOPATH/pkg/sumdb, by the database's
	// name, and each run's test database has a new key.
	gopath := t.TempDir()
	t.Cleanup(func() { makeWritable(gopath) })
	p := startService(t, []string{"GOPATH=" + gopath, "GOPROXY=" + mods.proxy.URL, "GOSUMDB=" + mods.vkey + " " + mods.sumdb.URL,
		"GONOSUMDB=", "GONOSUMCHECK=", "GOPRIVATE=", "GOINSECURE=", "GOTOOLCHAIN=local"})
	b := p.succeeded(p.submit(`{"source":{"module":"example.com/hello@v1.2.3"},` + helloPackages + `}`).ID)
	if b.Source.Kind != "module" || b.Source.Revision != "v1.2.3" || b.Source.Hash != mods.hash {
		t.Errorf("source recorded as %+v, want the module at v1.2.3 with hash %s", b.Source, mods.hash)
	}
	checkPulled(t, b)
	if served := mods.requests(); !slices.Contains(served, "/example.com/hello/@v/v1.2.3.zip") {
		t.Errorf("the proxy never served the module's zip (served %v)", served)
	}
}

// checkPulled pulls a build's image back from the server and validates it.
func checkPulled(t *testing.T, b buildrecord.Build) {
	t.Helper()
	img, err := remote.Image(mustRef(t, b.Results[0].Ref))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("the image pulled from /v2/ does not validate: %v", err)
	}
	if d, _ := img.Digest(); d.String() != b.Results[0].Digest {
		t.Errorf("pulled %s, the record says %s", d, b.Results[0].Digest)
	}
}

// tarGz packs files (name → content) as a tar.gz.
func tarGz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(files[name])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, files[name])
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// modServers are a module proxy serving one module version and a
// checksum database that vouches for it.
type modServers struct {
	proxy, sumdb *httptest.Server
	vkey, hash   string
	mu           sync.Mutex
	served       []string // the proxy's request paths
}

func (m *modServers) requests() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.served)
}

func serveModule(t *testing.T, path, version string, files map[string]string) *modServers {
	t.Helper()
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, files)
	var z bytes.Buffer
	if err := modzip.CreateFromDir(&z, module.Version{Path: path, Version: version}, dir); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(z.Bytes()), int64(z.Len()))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	byName := map[string]*zip.File{}
	for _, f := range zr.File {
		names, byName[f.Name] = append(names, f.Name), f
	}
	zipHash, err := dirhash.Hash1(names, func(n string) (io.ReadCloser, error) { return byName[n].Open() })
	if err != nil {
		t.Fatal(err)
	}
	gomod := []byte(files["go.mod"])
	modHash, err := dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(gomod)), nil })
	if err != nil {
		t.Fatal(err)
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, "sumdb.test")
	if err != nil {
		t.Fatal(err)
	}
	m := &modServers{vkey: vkey, hash: zipHash}
	m.sumdb = httptest.NewServer(sumdb.NewServer(sumdb.NewTestServer(skey, func(p, v string) ([]byte, error) {
		if p != path || v != version {
			return nil, fs.ErrNotExist
		}
		return fmt.Appendf(nil, "%s %s %s\n%s %s/go.mod %s\n", path, version, zipHash, path, version, modHash), nil
	})))
	t.Cleanup(m.sumdb.Close)
	escaped, _ := module.EscapePath(path)
	prefix := "/" + escaped + "/@v/"
	m.proxy = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		m.served = append(m.served, r.URL.Path)
		m.mu.Unlock()
		switch r.URL.Path {
		case prefix + "list":
			fmt.Fprintln(w, version)
		case prefix + version + ".info":
			fmt.Fprintf(w, `{"Version":%q,"Time":"2026-01-01T00:00:00Z"}`, version)
		case prefix + version + ".mod":
			w.Write(gomod)
		case prefix + version + ".zip":
			w.Write(z.Bytes())
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(m.proxy.Close)
	return m
}
