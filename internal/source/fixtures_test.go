package source

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
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-billy/v5/memfs"
	"github.com/go-git/go-billy/v5/util"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/pktline"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/server"
	"github.com/go-git/go-git/v5/storage/memory"
	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/dirhash"
	"golang.org/x/mod/sumdb/note"
	modzip "golang.org/x/mod/zip"
)

// ent is one entry of a test archive.
type ent struct {
	name string
	typ  byte // 0 is a regular file
	link string
	body string
	size int64 // with typ 0 and body "", that many zero bytes
}

// tgz makes a tar.gz of entries, written as given (no checks).
func tgz(t testing.TB, entries ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: 0o644, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		var body io.Reader
		switch e.typ {
		case 0:
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.body))
			body = strings.NewReader(e.body)
			if e.body == "" && e.size > 0 {
				h.Size, body = e.size, io.LimitReader(zeros{}, e.size)
			}
		case tar.TypeDir:
			h.Mode = 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if body != nil {
			if _, err := io.Copy(tw, body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sparseTar is a tar holding one GNU PAX 1.0 sparse file that is all
// hole: a kilobyte and a half that archive/tar reads as size zero bytes.
// (tar.Writer will not write sparse files, so the blocks are made here.)
func sparseTar(size int64) []byte {
	rec := func(k, v string) string { // "LEN k=v\n", LEN counting itself
		n := len(k) + len(v) + 3
		for len(fmt.Sprintf("%d %s=%s\n", n, k, v)) != n {
			n = len(fmt.Sprintf("%d %s=%s\n", n, k, v))
		}
		return fmt.Sprintf("%d %s=%s\n", n, k, v)
	}
	block := func(name string, typ byte, size int) []byte {
		h := make([]byte, 512)
		copy(h, name)
		copy(h[100:], "0000644\x00")
		copy(h[124:], fmt.Sprintf("%011o\x00", size))
		copy(h[136:], "00000000000\x00")
		h[156] = typ
		copy(h[257:], "ustar\x0000")
		copy(h[148:], "        ")
		sum := 0
		for _, c := range h {
			sum += int(c)
		}
		copy(h[148:], fmt.Sprintf("%06o\x00 ", sum))
		return h
	}
	pad := func(b []byte) []byte { return append(b, make([]byte, (512-len(b)%512)%512)...) }
	pax := rec("GNU.sparse.major", "1") + rec("GNU.sparse.minor", "0") +
		rec("GNU.sparse.name", "hole") + rec("GNU.sparse.realsize", fmt.Sprint(size))
	var b []byte
	b = append(b, block("PaxHeaders/hole", 'x', len(pax))...)
	b = append(b, pad([]byte(pax))...)
	b = append(b, block("GNUSparseFile.0/hole", '0', 512)...)
	b = append(b, pad([]byte("0\n"))...) // a sparse map of no data: all hole
	return append(b, make([]byte, 1024)...)
}

func gzipped(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	if _, err := gz.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// randomText is n bytes that gzip cannot shrink.
func randomText(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// goodArchive is a module with a subdirectory, a symlink and a hard link.
func goodArchive(t testing.TB) []byte {
	return tgz(t,
		ent{name: "./", typ: tar.TypeDir},
		ent{name: "go.mod", body: "module example.com/up\n\ngo 1.22\n"},
		ent{name: "cmd/app/", typ: tar.TypeDir},
		ent{name: "cmd/app/main.go", body: "package main\n\nfunc main() {}\n"},
		ent{name: "cmd/app/kodata/link", typ: tar.TypeSymlink, link: "../main.go"},
		ent{name: "copy.mod", typ: tar.TypeLink, link: "go.mod"},
	)
}

// badArchives are the archives SaveUpload must refuse, for the table test
// and as fuzz seeds; limits are testLimits.
func badArchives(t testing.TB) map[string][]byte {
	many := make([]ent, testLimits.MaxFiles+1)
	for i := range many {
		many[i] = ent{name: fmt.Sprintf("f%d.go", i), body: "package f\n"}
	}
	return map[string][]byte{
		"archive with ../":                    tgz(t, ent{name: "../evil.go", body: "x"}),
		"archive with ../ inside a name":      tgz(t, ent{name: "a/../../evil.go", body: "x"}),
		"archive with an absolute path":       tgz(t, ent{name: "/etc/evil", body: "x"}),
		"archive with a symlink out":          tgz(t, ent{name: "link", typ: tar.TypeSymlink, link: "../../etc"}),
		"archive with an absolute symlink":    tgz(t, ent{name: "link", typ: tar.TypeSymlink, link: "/etc/passwd"}),
		"archive with a symlink out by link":  tgz(t, ent{name: "sub/up", typ: tar.TypeSymlink, link: ".."}, ent{name: "c", typ: tar.TypeSymlink, link: "sub/up/../x"}),
		"archive with a symlink loop":         tgz(t, ent{name: "a", typ: tar.TypeSymlink, link: "b/x"}, ent{name: "b", typ: tar.TypeSymlink, link: "a/x"}),
		"archive with an entry below a link":  tgz(t, ent{name: "sub/", typ: tar.TypeDir}, ent{name: "d", typ: tar.TypeSymlink, link: "sub"}, ent{name: "d/x.go", body: "x"}),
		"archive with a hard link out":        tgz(t, ent{name: "h", typ: tar.TypeLink, link: "../../etc/passwd"}),
		"archive with a hard link to nothing": tgz(t, ent{name: "h", typ: tar.TypeLink, link: "missing"}),
		"archive with a char device":          tgz(t, ent{name: "null", typ: tar.TypeChar}),
		"archive with a block device":         tgz(t, ent{name: "sda", typ: tar.TypeBlock}),
		"archive with a fifo":                 tgz(t, ent{name: "pipe", typ: tar.TypeFifo}),
		"archive with a repeated name":        tgz(t, ent{name: "a.go", body: "x"}, ent{name: "a.go", typ: tar.TypeSymlink, link: "b.go"}),
		"archive with too many files":         tgz(t, many...),
		"archive that is a gzip bomb":         tgz(t, ent{name: "zeros", size: 6 << 20}),
		"archive that is oversized":           tgz(t, ent{name: "big", body: randomText(t, int(testLimits.MaxUpload)+1024)}),
		"archive with a sparse file":          gzipped(t, sparseTar(16<<20)),
		"archive that is not gzip":            []byte("package main\n"),
		"archive that is truncated":           goodArchive(t)[:60],
	}
}

var testLimits = Limits{MaxUpload: 64 << 10, MaxUnpacked: 8 << 20, MaxFiles: 50, MaxRatio: 100}

// serveGit serves the repository in st over git's smart HTTP protocol
// (upload-pack only) at /repo.git, with go-git's own server.
func serveGit(t testing.TB, st storer.Storer) *httptest.Server {
	srv := server.NewServer(oneRepo{st})
	ep, err := transport.NewEndpoint("/repo.git")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /repo.git/info/refs", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("service") != "git-upload-pack" {
			http.Error(w, "upload-pack only", http.StatusForbidden)
			return
		}
		sess, err := srv.NewUploadPackSession(ep, nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		ar, err := sess.AdvertisedReferencesContext(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		ar.Prefix = [][]byte{[]byte("# service=git-upload-pack"), pktline.Flush}
		w.Header().Set("Content-Type", "application/x-git-upload-pack-advertisement")
		_ = ar.Encode(w)
	})
	mux.HandleFunc("POST /repo.git/git-upload-pack", func(w http.ResponseWriter, r *http.Request) {
		req := packp.NewUploadPackRequest()
		if err := req.Decode(r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		sess, err := srv.NewUploadPackSession(ep, nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		resp, err := sess.UploadPack(r.Context(), req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer resp.Close()
		w.Header().Set("Content-Type", "application/x-git-upload-pack-result")
		_ = resp.Encode(w)
	})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

type oneRepo struct{ st storer.Storer }

func (o oneRepo) Load(*transport.Endpoint) (storer.Storer, error) { return o.st, nil }

// gitRepo is a test repository: two commits on master, a branch, a
// lightweight and an annotated tag.
type gitRepo struct {
	st            *memory.Storage
	first, second plumbing.Hash
	evil          plumbing.Hash // on branch "evil": a symlink out of the tree
}

func newGitRepo(t testing.TB) *gitRepo {
	t.Helper()
	st := memory.NewStorage()
	wfs := memfs.New()
	repo, err := git.Init(st, wfs)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	sig := &object.Signature{Name: "t", Email: "t@example.com", When: time.Unix(1e9, 0)}
	commit := func(files map[string]string) plumbing.Hash {
		for name, body := range files {
			if err := util.WriteFile(wfs, name, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := wt.Add(name); err != nil {
				t.Fatal(err)
			}
		}
		h, err := wt.Commit("c", &git.CommitOptions{Author: sig, Committer: sig})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	g := &gitRepo{st: st}
	g.first = commit(map[string]string{"go.mod": "module example.com/g\n\ngo 1.22\n", "app/main.go": "package main\n\nfunc main() {}\n"})
	g.second = commit(map[string]string{"app/version.go": "package main\n\nconst v = 2\n"})
	if _, err := repo.CreateTag("v1.0.0", g.second, &git.CreateTagOptions{Tagger: sig, Message: "v1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.CreateTag("light", g.first, nil); err != nil {
		t.Fatal(err)
	}
	if err := wt.Checkout(&git.CheckoutOptions{Branch: "refs/heads/evil", Create: true}); err != nil {
		t.Fatal(err)
	}
	if err := wfs.Symlink("../../../etc/passwd", "passwd"); err != nil {
		t.Fatal(err)
	}
	if _, err := wt.Add("passwd"); err != nil {
		t.Fatal(err)
	}
	if g.evil, err = wt.Commit("evil", &git.CommitOptions{Author: sig, Committer: sig}); err != nil {
		t.Fatal(err)
	}
	if err := wt.Checkout(&git.CheckoutOptions{Branch: "refs/heads/master"}); err != nil {
		t.Fatal(err)
	}
	return g
}

// testModule is a module the test proxy serves.
type testModule struct {
	path, version string
	files         map[string]string
}

// modServers is a module proxy and a checksum database served by the
// test. The database vouches for each module's real hashes, except for
// those in lie, for which it vouches for other content's.
type modServers struct {
	proxy, sumdb *httptest.Server
	vkey         string
	zips, mods   map[string][]byte // path@version → content
}

func serveModules(t testing.TB, mods []testModule, lie map[string]bool) *modServers {
	t.Helper()
	m := &modServers{zips: map[string][]byte{}, mods: map[string][]byte{}}
	for _, mod := range mods {
		key := mod.path + "@" + mod.version
		m.zips[key] = modZip(t, mod)
		m.mods[key] = []byte(mod.files["go.mod"])
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, "sumdb.test")
	if err != nil {
		t.Fatal(err)
	}
	m.vkey = vkey
	gosum := func(path, vers string) ([]byte, error) {
		key := path + "@" + vers
		z, ok := m.zips[key]
		if !ok {
			return nil, fs.ErrNotExist
		}
		if lie[key] {
			z = modZip(t, testModule{path, vers, map[string]string{"go.mod": string(m.mods[key]), "other.go": "package other\n"}})
		}
		zh := zipHash(t, z)
		mh, err := dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(m.mods[key])), nil
		})
		if err != nil {
			return nil, err
		}
		return fmt.Appendf(nil, "%s %s %s\n%s %s/go.mod %s\n", path, vers, zh, path, vers, mh), nil
	}
	m.sumdb = httptest.NewServer(sumdb.NewServer(sumdb.NewTestServer(skey, gosum)))
	t.Cleanup(m.sumdb.Close)
	m.proxy = httptest.NewServer(http.HandlerFunc(m.serveProxy))
	t.Cleanup(m.proxy.Close)
	return m
}

func (m *modServers) serveProxy(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimPrefix(r.URL.Path, "/")
	i := strings.Index(p, "/@v/")
	if i < 0 {
		http.NotFound(w, r)
		return
	}
	path, err := module.UnescapePath(p[:i])
	if err != nil {
		http.NotFound(w, r)
		return
	}
	file := p[i+len("/@v/"):]
	ext := filepath.Ext(file)
	key := path + "@" + strings.TrimSuffix(file, ext)
	switch {
	case file == "list":
		for k := range m.zips {
			if v, ok := strings.CutPrefix(k, path+"@"); ok {
				fmt.Fprintln(w, v)
			}
		}
	case ext == ".info" && m.zips[key] != nil:
		fmt.Fprintf(w, `{"Version":%q,"Time":"2020-01-01T00:00:00Z"}`, strings.TrimSuffix(file, ext))
	case ext == ".mod" && m.zips[key] != nil:
		w.Write(m.mods[key])
	case ext == ".zip" && m.zips[key] != nil:
		w.Write(m.zips[key])
	default:
		http.NotFound(w, r)
	}
}

func modZip(t testing.TB, mod testModule) []byte {
	t.Helper()
	dir := t.TempDir()
	for name, body := range mod.files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := modzip.CreateFromDir(&buf, module.Version{Path: mod.path, Version: mod.version}, dir); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zipHash(t testing.TB, z []byte) string {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(z), int64(len(z)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	files := map[string]*zip.File{}
	for _, f := range zr.File {
		names = append(names, f.Name)
		files[f.Name] = f
	}
	h, err := dirhash.Hash1(names, func(name string) (io.ReadCloser, error) { return files[name].Open() })
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// goEnv is an environment for the go command against m, with a module
// cache of its own that is made removable when the test ends.
func goEnv(t testing.TB, proxy, sumdbSpec string) []string {
	t.Helper()
	home := t.TempDir()
	modcache := filepath.Join(home, "mod")
	t.Cleanup(func() { makeWritable(modcache) })
	return []string{
		"HOME=" + home, "GOPATH=" + filepath.Join(home, "gopath"), "GOMODCACHE=" + modcache,
		"GOCACHE=" + filepath.Join(home, "cache"), "GOPROXY=" + proxy, "GOSUMDB=" + sumdbSpec,
		"GOFLAGS=-mod=mod", "GOTOOLCHAIN=local", "GONOSUMDB=", "GOPRIVATE=", "GOENV=off",
	}
}

func makeWritable(dir string) {
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o755)
		}
		return nil
	})
}
