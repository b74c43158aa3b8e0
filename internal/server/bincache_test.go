package server

import (
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"

	"github.com/kilnbuild/kiln/internal/buildrecord"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// cachedBinaries lists the binaries of kiln's binary cache under cache.
func cachedBinaries(t *testing.T, cache string) []os.FileInfo {
	t.Helper()
	bins, err := filepath.Glob(filepath.Join(cache, "bin", "*", "hello*"))
	if err != nil {
		t.Fatal(err)
	}
	var fis []os.FileInfo
	for _, b := range bins {
		fi, err := os.Stat(b)
		if err != nil {
			t.Fatal(err)
		}
		fis = append(fis, fi)
	}
	return fis
}

// TestServiceReusesBinary: a second build of the same package through
// the service finds the first one's binary up to date instead of linking
// it again into a new cache entry, because both builds fetch the source
// into the same slot directory. A link writes a new file and renames it
// over the old one; an up-to-date binary keeps its inode (go build only
// touches its modification time).
func TestServiceReusesBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles a program: not in -short")
	}
	t.Chdir(t.TempDir())
	testutil.WriteFiles(t, "ws/hello", testutil.HelloModule)
	warmGoCache(t, "data")
	url := serve(t, http.DefaultClient, "http", "127.0.0.1", "--data", "data", "--workspace", "ws", "--max-builds", "1")
	const build = `{"source":{"workspace":"hello"},"packages":["./cmd/hello"],"platforms":["linux/amd64"]}`
	var bins [][]os.FileInfo
	var digests []string
	for range 2 {
		b := waitFinal(t, url, submit(t, url, build).ID)
		if b.State != buildrecord.Succeeded {
			t.Fatalf("build %s: %+v", b.State, b.Error)
		}
		digests = append(digests, b.Results[0].Digest)
		bins = append(bins, cachedBinaries(t, "data/cache"))
	}
	if digests[0] != digests[1] {
		t.Errorf("two builds of one source: %s, then %s", digests[0], digests[1])
	}
	if len(bins[0]) != 1 || len(bins[1]) != 1 {
		t.Fatalf("binary cache holds %d binaries after one build, %d after two; want 1 and 1 (the second build reuses the first's)", len(bins[0]), len(bins[1]))
	}
	first, second := bins[0][0], bins[1][0]
	if !os.SameFile(first, second) {
		t.Errorf("the second build linked the binary again (a new file): it was not found up to date")
	}
	if ents, _ := os.ReadDir("data/builds"); len(ents) != 0 {
		t.Errorf("left in the builds directory: %v", ents)
	}
}

// TestBinaryCacheBounded: K builds of distinct packages in one slot
// directory leave at most keepBinaries binaries in the cache.
func TestBinaryCacheBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles programs: not in -short")
	}
	reg := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")
	cache := t.TempDir()
	b := &builder{env: os.Environ(), registry: host, cacheDir: cache, keepBinaries: 2, binaryGrace: time.Nanosecond}
	slot := filepath.Join(t.TempDir(), "slot-0")
	const k = 4
	for i := range k {
		os.RemoveAll(slot)
		files := map[string]string{}
		for name, content := range testutil.HelloModule {
			files[name] = content
		}
		// A distinct module each time: a distinct package to cache.
		files["go.mod"] = strings.Replace(files["go.mod"], "example.com/hello", "example.com/hello"+string(rune('a'+i)), 1)
		testutil.WriteFiles(t, slot, files)
		raw := json.RawMessage(`{"packages":["./cmd/hello"],"platforms":["linux/amd64"]}`)
		if _, _, err := b.Run(context.Background(), raw, slot, io.Discard); err != nil {
			t.Fatalf("build %d: %v", i, err)
		}
	}
	if got := cachedBinaries(t, cache); len(got) > b.keepBinaries {
		t.Errorf("binary cache holds %d binaries after %d builds of distinct packages, want at most %d", len(got), k, b.keepBinaries)
	}
}
