package compare_test

// The audit's findings against kiln compare (issue "Trust only what was
// checked"), one test each. They use only the API that existed before the
// fix, so that each can be run against the old code and seen to fail; they
// measure memory and disk by what was allocated or written, not by time.

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/kilnbuild/kiln/internal/compare"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// tent is one entry of a hand-made tar archive.
type tent struct {
	name   string
	typ    byte // 0: a regular file
	mode   int64
	body   []byte
	link   string
	sparse int64 // > 0: a PAX sparse file of this size, all hole
}

// ustar is a raw ustar header, for what archive/tar will not write.
func ustar(name string, typ byte, size int64) []byte {
	h := make([]byte, 512)
	copy(h[0:100], name)
	copy(h[100:108], "0000644\x00")
	copy(h[108:116], "0000000\x00")
	copy(h[116:124], "0000000\x00")
	copy(h[124:136], fmt.Sprintf("%011o\x00", size))
	copy(h[136:148], "00000000000\x00")
	h[156] = typ
	copy(h[257:263], "ustar\x00")
	copy(h[263:265], "00")
	copy(h[148:156], "        ")
	sum := 0
	for _, c := range h {
		sum += int(c)
	}
	copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return h
}

func pad512(b []byte) []byte {
	if r := len(b) % 512; r != 0 {
		b = append(b, make([]byte, 512-r)...)
	}
	return b
}

// paxRecord is one "LEN key=value\n" record; LEN counts itself.
func paxRecord(k, v string) string {
	n := len(k) + len(v) + 3
	for {
		s := fmt.Sprintf("%d %s=%s\n", n, k, v)
		if len(s) == n {
			return s
		}
		n = len(s)
	}
}

// sparseEntry is a GNU PAX 1.0 sparse file: a few hundred bytes in the
// archive that archive/tar reads as size bytes of zeros.
func sparseEntry(name string, size int64) []byte {
	recs := paxRecord("GNU.sparse.major", "1") + paxRecord("GNU.sparse.minor", "0") +
		paxRecord("GNU.sparse.name", name) + paxRecord("GNU.sparse.realsize", fmt.Sprint(size))
	var b []byte
	b = append(b, ustar("PaxHeaders/x", 'x', int64(len(recs)))...)
	b = append(b, pad512([]byte(recs))...)
	b = append(b, ustar("GNUSparseFile.0/x", '0', 512)...)
	b = append(b, pad512([]byte("0\n"))...) // a map of no fragments: all hole
	return b
}

// writeTar writes entries as a tar stream.
func writeTar(t testing.TB, entries []tent) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		if e.sparse > 0 {
			if err := tw.Flush(); err != nil {
				t.Fatal(err)
			}
			b.Write(sparseEntry(e.name, e.sparse))
			continue
		}
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		hdr := &tar.Header{Name: e.name, Typeflag: typ, Mode: mode, Linkname: e.link, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// dockerArchive is a `docker save` tarball of one image whose single
// layer is the plain tar stream layerTar; extra entries are appended.
func dockerArchive(t testing.TB, layerTar []byte, extra ...tent) []byte {
	t.Helper()
	cfg, err := json.Marshal(v1.ConfigFile{
		OS: "linux", Architecture: "amd64",
		RootFS: v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{{Algorithm: "sha256", Hex: sha256Hex(layerTar)}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	cfgName := sha256Hex(cfg) + ".json"
	manifest, _ := json.Marshal([]map[string]any{{"Config": cfgName, "RepoTags": []string{"example.com/x:v1"}, "Layers": []string{"l1/layer.tar"}}})
	return writeTar(t, append([]tent{
		{name: "manifest.json", body: manifest},
		{name: cfgName, body: cfg},
		{name: "l1/", typ: tar.TypeDir, mode: 0o755},
		{name: "l1/layer.tar", body: layerTar},
	}, extra...))
}

// layoutEntries is an OCI layout of one random image, as archive entries.
func layoutEntries(t testing.TB) (string, []tent) {
	t.Helper()
	dir := string(testutil.WriteLayout(t, t.TempDir(), testutil.RandomImage(t, 512, 2)))
	return dir, layoutFiles(dir)
}

// allocated runs f and returns the bytes it allocated on the heap.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// treeSize is the bytes of the files under dir.
func treeSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// openAndAnalyze runs Open and Analyze as kiln compare does.
func openAndAnalyze(ref string, opt compare.Options) (*compare.Image, error) {
	src, err := compare.Open(context.Background(), ref, opt)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	return compare.Analyze(context.Background(), src, opt)
}

const auditAllocBudget = 64 << 20

// Finding 4: ten 64 MiB dpkg status files (sparse, so the archive is tens
// of KB) were each read whole into memory: 1.3 GB.
func TestAuditDpkgStatusFilesAreNotMemory(t *testing.T) {
	var files []tent
	for i := range 10 {
		files = append(files, tent{name: fmt.Sprintf("var/lib/dpkg/status.d/pkg%d", i), sparse: 64 << 20})
	}
	arch := filepath.Join(t.TempDir(), "dpkg.docker.tar")
	if err := os.WriteFile(arch, dockerArchive(t, writeTar(t, files)), 0o644); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(arch); st.Size() > 64<<10 {
		t.Fatalf("the archive is %d bytes, want a few tens of KB", st.Size())
	}
	var err error
	n := allocated(func() { _, err = openAndAnalyze("docker-archive:"+arch, compare.Options{TempDir: t.TempDir()}) })
	t.Logf("allocated %d MiB, err %v", n>>20, err)
	if n > auditAllocBudget {
		t.Fatalf("comparing a %d KB archive allocated %d MiB: memory grows with what the files declare", 40, n>>20)
	}
}

// Finding 4: a 1 GiB sparse blob in an oci-archive was unpacked to 1 GiB
// (1.7 GB) of temporary disk.
func TestAuditSparseBlobTakesNoTempDisk(t *testing.T) {
	_, entries := layoutEntries(t)
	entries = append(entries, tent{name: "blobs/sha256/" + strings.Repeat("ab", 32), sparse: 1 << 30})
	arch := filepath.Join(t.TempDir(), "sparse.oci.tar")
	if err := os.WriteFile(arch, writeTar(t, entries), 0o644); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	src, err := compare.Open(context.Background(), "oci-archive:"+arch, compare.Options{TempDir: tmp})
	used := treeSize(tmp)
	if err == nil {
		src.Close()
	}
	t.Logf("temp disk %d MiB, err %v", used>>20, err)
	if used > 16<<20 {
		t.Fatalf("opening the archive wrote %d MiB of temporary disk", used>>20)
	}
	if err == nil || !strings.Contains(err.Error(), "sparse") {
		t.Fatalf("err = %v, want the sparse entry refused", err)
	}
}

// Finding 4: a 1 GiB sparse index.json or config was read whole: > 2 GB.
func TestAuditHugeIndexOrConfigIsNotRead(t *testing.T) {
	for _, which := range []string{"index.json", "config"} {
		t.Run(which, func(t *testing.T) {
			dir, _ := layoutEntries(t)
			file := filepath.Join(dir, "index.json")
			if which == "config" {
				p, _ := layout.FromPath(dir)
				idx, _ := p.ImageIndex()
				im, _ := idx.IndexManifest()
				img, _ := idx.Image(im.Manifests[0].Digest)
				m, _ := img.Manifest()
				file = filepath.Join(dir, "blobs", "sha256", m.Config.Digest.Hex)
			}
			if err := os.Truncate(file, 1<<30); err != nil {
				t.Fatal(err)
			}
			var err error
			n := allocated(func() { _, err = openAndAnalyze("oci:"+dir, compare.Options{TempDir: t.TempDir()}) })
			t.Logf("allocated %d MiB, err %v", n>>20, err)
			if n > auditAllocBudget {
				t.Fatalf("a 1 GiB sparse %s allocated %d MiB", which, n>>20)
			}
			if err == nil {
				t.Fatal("no error")
			}
		})
	}
}

// Finding 1: blobs were never hashed when read, so compare reported an
// attacker's content under the signed digest.
func TestAuditTamperedLayerIsRefused(t *testing.T) {
	dir, _ := layoutEntries(t)
	p, _ := layout.FromPath(dir)
	idx, _ := p.ImageIndex()
	im, _ := idx.IndexManifest()
	img, _ := idx.Image(im.Manifests[0].Digest)
	m, _ := img.Manifest()
	evil, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	ls, _ := evil.Layers()
	rc, _ := ls[0].Compressed()
	var b bytes.Buffer
	b.ReadFrom(rc)
	rc.Close()
	if err := os.WriteFile(filepath.Join(dir, "blobs", "sha256", m.Layers[0].Digest.Hex), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = openAndAnalyze("oci:"+dir, compare.Options{TempDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), m.Layers[0].Digest.String()) {
		t.Fatalf("err = %v: the attacker's layer was reported under %s", err, m.Layers[0].Digest)
	}
}
