package store_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kilnbuild/kiln/internal/store"
)

func sha(data []byte) v1.Hash {
	s := sha256.Sum256(data)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(s[:])}
}

// push uploads data into repo as a registry would.
func push(t *testing.T, l *store.Layout, repo string, data []byte) v1.Hash {
	t.Helper()
	up, err := l.Repositories().NewUpload(repo)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Write(bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	h := sha(data)
	if err := up.Commit(h); err != nil {
		t.Fatal(err)
	}
	return h
}

// pushNumbered pushes n blobs into app, the i-th the text format gives i.
func pushNumbered(t *testing.T, l *store.Layout, n int, format string) []v1.Hash {
	t.Helper()
	hs := make([]v1.Hash, n)
	for i := range hs {
		hs[i] = push(t, l, "app", []byte(fmt.Sprintf(format, i)))
	}
	return hs
}

func readBlob(t *testing.T, l *store.Layout, repo string, h v1.Hash) ([]byte, error) {
	t.Helper()
	rc, _, err := l.Repositories().OpenBlob(repo, h)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func openJournal(t *testing.T, dir string) *store.Layout {
	t.Helper()
	l, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Repositories().OpenJournal(); err != nil {
		t.Fatal(err)
	}
	return l
}

func TestJournalKeepsSmallBlobsUntilTheyAreNeeded(t *testing.T) {
	_, dir := open(t)
	l := openJournal(t, dir)
	small := []byte("a small blob")
	big := bytes.Repeat([]byte("x"), store.JournalMax+1)
	hs, hb := push(t, l, "app", small), push(t, l, "app", big)

	// The small blob is served at once, from the journal: no file yet.
	if got, err := readBlob(t, l, "app", hs); err != nil || !bytes.Equal(got, small) {
		t.Fatalf("small blob = %q, %v", got, err)
	}
	if n, err := l.Repositories().StatBlob("app", hs); err != nil || n != int64(len(small)) {
		t.Errorf("StatBlob = %d, %v", n, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "blobs", "sha256", hs.Hex)); !os.IsNotExist(err) {
		t.Errorf("the small blob is a file before it is needed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "blobs", "sha256", hb.Hex)); err != nil {
		t.Errorf("the large blob is not a file: %v", err)
	}
	if _, err := readBlob(t, l, "other", hs); !errors.Is(err, store.ErrBlobUnknown) {
		t.Errorf("another repository reads the blob: %v", err)
	}
	if from, ok := l.Repositories().FindBlob(hs, func(string) bool { return true }); !ok || from != "app" {
		t.Errorf("FindBlob = %q, %v", from, ok)
	}

	// A manifest that needs it writes it out, so a layout reader (which
	// goes through index.json) finds every blob.
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	hc := push(t, l, "app", config)
	manifest := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":%q,"digest":%q,"size":%d},"layers":[{"mediaType":%q,"digest":%q,"size":%d}]}`,
		types.OCIManifestSchema1, types.OCIConfigJSON, hc, len(config), types.OCILayer, hs, len(small)))
	if _, _, err := l.Repositories().PutManifest("app", "v1", types.OCIManifestSchema1, manifest); err != nil {
		t.Fatal(err)
	}
	for _, h := range []v1.Hash{hs, hc} {
		if data, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", h.Hex)); err != nil || sha(data) != h {
			t.Errorf("blob %s after the manifest: %v", h, err)
		}
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	img, err := p.Image(sha(manifest))
	if err != nil {
		t.Fatal(err)
	}
	if ls, err := img.Layers(); err != nil || len(ls) != 1 {
		t.Fatalf("layers = %v, %v", ls, err)
	} else if rc, err := ls[0].Compressed(); err != nil {
		t.Fatal(err)
	} else if got, _ := io.ReadAll(rc); !bytes.Equal(got, small) {
		t.Errorf("layer read from the layout = %q", got)
	}

	// Mounting and deleting write out what they touch first.
	other := push(t, l, "app", []byte("another small blob"))
	if err := l.Repositories().MountBlob("app", "mounted", other); err != nil {
		t.Fatal(err)
	}
	if got, err := readBlob(t, l, "mounted", other); err != nil || string(got) != "another small blob" {
		t.Errorf("mounted blob = %q, %v", got, err)
	}
	gone := push(t, l, "app", []byte("deleted soon"))
	if err := l.Repositories().DeleteBlob("app", gone); err != nil {
		t.Fatal(err)
	}
	if _, err := readBlob(t, l, "app", gone); !errors.Is(err, store.ErrBlobUnknown) {
		t.Errorf("deleted blob read: %v", err)
	}

	// Closing writes out the rest and empties the journal.
	last := push(t, l, "app", []byte("the last one"))
	if err := l.Repositories().CloseJournal(); err != nil {
		t.Fatal(err)
	}
	l2, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := readBlob(t, l2, "app", last); err != nil || string(got) != "the last one" {
		t.Errorf("after close = %q, %v", got, err)
	}
	if _, err := readBlob(t, l2, "app", gone); !errors.Is(err, store.ErrBlobUnknown) {
		t.Errorf("a deleted blob came back: %v", err)
	}
	assertJournalEmpty(t, dir, last)
}

// assertJournalEmpty checks that the journal of the closed store at dir
// holds no record of h: were it there, opening the journal would write
// the blob out again.
func assertJournalEmpty(t *testing.T, dir string, h v1.Hash) {
	t.Helper()
	path := filepath.Join(dir, "blobs", h.Algorithm, h.Hex)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	l := openJournal(t, dir)
	defer l.Repositories().CloseJournal()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the journal still held %s: %v", h, err)
	}
}

// A process killed with blobs in the journal loses none of them: the next
// one to open it writes them out. A record cut short was never
// acknowledged and is dropped.
func TestJournalRecoversAfterAKill(t *testing.T) {
	_, dir := open(t)
	l := openJournal(t, dir)
	hs := pushNumbered(t, l, 20, "blob %d")
	// Stand in for the killed process: copy its journal, torn mid-record,
	// to a fresh store, as a crash would leave it.
	data, err := os.ReadFile(filepath.Join(dir, "journal"))
	if err != nil || len(data) == 0 {
		t.Fatalf("journal: %d bytes, %v", len(data), err)
	}
	_, dir2 := open(t)
	torn := append(append([]byte{}, data...), data[:len(data)/20]...)
	if err := os.WriteFile(filepath.Join(dir2, "journal"), torn, 0o644); err != nil {
		t.Fatal(err)
	}
	// A file written out before the crash but never synced may be empty.
	if err := os.MkdirAll(filepath.Join(dir2, "blobs", "sha256"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir2, "blobs", "sha256", hs[3].Hex), nil, 0o644); err != nil {
		t.Fatal(err)
	}

	l2 := openJournal(t, dir2)
	defer l2.Repositories().CloseJournal()
	for i, h := range hs {
		got, err := os.ReadFile(filepath.Join(dir2, "blobs", "sha256", h.Hex))
		if err != nil || string(got) != fmt.Sprintf("blob %d", i) {
			t.Errorf("blob %d after recovery = %q, %v", i, got, err)
		}
		if got, err := readBlob(t, l2, "app", h); err != nil || string(got) != fmt.Sprintf("blob %d", i) {
			t.Errorf("blob %d read after recovery = %q, %v", i, got, err)
		}
	}
	// One process at a time.
	l3, err := store.Open(dir2)
	if err != nil {
		t.Fatal(err)
	}
	if err := l3.Repositories().OpenJournal(); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("a second journal opened: %v", err)
	}
	l.Repositories().CloseJournal()
	if err := l2.Repositories().CloseJournal(); err != nil {
		t.Fatal(err)
	}
	assertJournalEmpty(t, dir2, hs[5])
}

// Records of a generation the journal has emptied are never replayed,
// even where the file still holds them: the journal keeps its length, so
// that appends overwrite old bytes rather than grow the file.
func TestJournalNeverReplaysAnEmptiedGeneration(t *testing.T) {
	_, dir := open(t)
	l := openJournal(t, dir)
	hs := pushNumbered(t, l, 50, "first generation %02d")
	if err := l.Repositories().CloseJournal(); err != nil { // written out, a new generation begun
		t.Fatal(err)
	}
	l = openJournal(t, dir)
	// A record as long as each of the first generation's: the next one in
	// the file is whole, and valid but for its generation.
	short := push(t, l, "app", []byte("later generation 00"))
	// A crash now, into a store without the first generation's blobs, as
	// a client's DELETE and gc would leave it.
	l2 := afterCrash(t, l, dir)
	defer l2.Repositories().CloseJournal()
	if got, err := readBlob(t, l2, "app", short); err != nil || string(got) != "later generation 00" {
		t.Errorf("second generation blob = %q, %v", got, err)
	}
	for _, h := range hs {
		if _, err := readBlob(t, l2, "app", h); !errors.Is(err, store.ErrBlobUnknown) {
			t.Fatalf("a blob of the emptied generation was replayed: %v", err)
		}
	}
}

// afterCrash stands in for a process killed while l had the journal of
// the store at dir open: the journal as it is, in a fresh store, opened
// again (l is closed).
func afterCrash(t *testing.T, l *store.Layout, dir string) *store.Layout {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "journal"))
	if err != nil {
		t.Fatal(err)
	}
	l.Repositories().CloseJournal()
	_, dir2 := open(t)
	if err := os.WriteFile(filepath.Join(dir2, "journal"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return openJournal(t, dir2)
}

// A blob deleted while the journal still holds its record stays deleted
// after a crash, and a later push of it is not cancelled by the delete.
func TestJournalDeleteSurvivesACrash(t *testing.T) {
	_, dir := open(t)
	l := openJournal(t, dir)
	gone := push(t, l, "app", []byte("deleted before the crash"))
	kept := push(t, l, "app", []byte("keeps the journal from emptying"))
	back := push(t, l, "other", []byte("deleted, then pushed again"))
	for _, d := range []struct {
		repo string
		h    v1.Hash
	}{{"app", gone}, {"other", back}} {
		if err := l.Repositories().DeleteBlob(d.repo, d.h); err != nil {
			t.Fatal(err)
		}
	}
	push(t, l, "other", []byte("deleted, then pushed again"))
	l2 := afterCrash(t, l, dir)
	defer l2.Repositories().CloseJournal()
	if _, err := readBlob(t, l2, "app", gone); !errors.Is(err, store.ErrBlobUnknown) {
		t.Errorf("a deleted blob came back after the crash: %v", err)
	}
	for _, d := range []struct {
		repo string
		h    v1.Hash
	}{{"app", kept}, {"other", back}} {
		if _, err := readBlob(t, l2, d.repo, d.h); err != nil {
			t.Errorf("%s@%s after the crash: %v", d.repo, d.h, err)
		}
	}
}

// Writers at once share the journal's writes; every blob acknowledged is
// in the journal, and in the blobs a recovery writes out.
func TestJournalTakesConcurrentWriters(t *testing.T) {
	_, dir := open(t)
	l := openJournal(t, dir)
	hashes := pushConcurrently(t, l, 32, 20, nil)
	l2 := afterCrash(t, l, dir)
	defer l2.Repositories().CloseJournal()
	checkPushed(t, l2, hashes)
}

// Pushes that arrive while the journal is being emptied (a manifest push
// wrote its blobs out) are recorded in the new generation: a copy of the
// store taken afterwards, opened as after a crash, has every blob.
func TestJournalEmptiesWhilePushesGoOn(t *testing.T) {
	_, dir := open(t)
	l := openJournal(t, dir)
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	hashes := pushConcurrently(t, l, 8, 25, func(w, i int, h v1.Hash, size int) error {
		if w != 0 {
			return nil
		}
		// A manifest now and then writes its blobs out and empties the journal.
		up, err := l.Repositories().NewUpload("app")
		if err == nil {
			_, err = up.Write(bytes.NewReader(config))
		}
		if err == nil {
			err = up.Commit(sha(config))
		}
		if err != nil {
			return err
		}
		m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":%q,"digest":%q,"size":%d},"layers":[{"mediaType":%q,"digest":%q,"size":%d}]}`,
			types.OCIManifestSchema1, types.OCIConfigJSON, sha(config), len(config), types.OCILayer, h, size))
		_, _, err = l.Repositories().PutManifest("app", fmt.Sprintf("t%d", i), types.OCIManifestSchema1, m)
		return err
	})
	copyDir := filepath.Join(t.TempDir(), "copy")
	if err := os.CopyFS(copyDir, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	l.Repositories().CloseJournal()
	l2 := openJournal(t, copyDir)
	defer l2.Repositories().CloseJournal()
	checkPushed(t, l2, hashes)
}

// pushConcurrently pushes each blobs from each of writers goroutines into
// repository app, calling after (if set) once each is acknowledged.
func pushConcurrently(t *testing.T, l *store.Layout, writers, each int, after func(w, i int, h v1.Hash, size int) error) [][]v1.Hash {
	t.Helper()
	var wg sync.WaitGroup
	hashes := make([][]v1.Hash, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				data := []byte(fmt.Sprintf("writer %d blob %d", w, i))
				up, err := l.Repositories().NewUpload("app")
				if err == nil {
					_, err = up.Write(bytes.NewReader(data))
				}
				if err == nil {
					err = up.Commit(sha(data))
				}
				if err == nil && after != nil {
					err = after(w, i, sha(data), len(data))
				}
				if err != nil {
					t.Error(err)
					return
				}
				hashes[w] = append(hashes[w], sha(data))
			}
		}()
	}
	wg.Wait()
	return hashes
}

// checkPushed fails unless l serves every blob pushConcurrently pushed.
func checkPushed(t *testing.T, l *store.Layout, hashes [][]v1.Hash) {
	t.Helper()
	for w := range hashes {
		for i, h := range hashes[w] {
			if got, err := readBlob(t, l, "app", h); err != nil || string(got) != fmt.Sprintf("writer %d blob %d", w, i) {
				t.Fatalf("writer %d blob %d = %q, %v", w, i, got, err)
			}
		}
	}
}
