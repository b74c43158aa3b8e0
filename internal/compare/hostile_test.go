package compare_test

// The adversarial matrix: one table per reader (oci-archive,
// docker-archive, oci: layout). Every case must end in a clear one-line
// error or a note in the report, within small budgets. The archive cases
// are also the seeds of FuzzOpenArchive.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kilnbuild/kiln/internal/compare"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// hostile is one case of a reader's table.
type hostile struct {
	name   string
	build  func(t testing.TB) []byte // the archive (the layout, for oci:)
	limits compare.Limits
	want   string // in the error; "" means no error
	note   string // in a note of the report
}

// small are the budgets the tables run with: an attack must not need the
// defaults' headroom to be caught.
var small = compare.Limits{Bytes: 256 << 20, File: 1 << 20, Entries: 10_000, TempDisk: 16 << 20}

// tiny has a bytes budget a 12 MiB gzip bomb exceeds.
var tiny = compare.Limits{Bytes: 4 << 20, File: 1 << 20, Entries: 10_000, TempDisk: 16 << 20}

// smallJSON has a JSON budget of 64 KiB, so that the cases over it stay small.
var smallJSON = compare.Limits{Bytes: 256 << 20, File: 1 << 20, Entries: 10_000, TempDisk: 16 << 20, JSON: 64 << 10}

// big lets sparse files through the bytes budget, to reach the file budget.
var big = compare.Limits{Bytes: 4 << 30, File: 1 << 20, Entries: 10_000, TempDisk: 16 << 20}

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return z.Bytes()
}

func get(es []tent, name string) []byte {
	for _, e := range es {
		if e.name == name {
			return e.body
		}
	}
	return nil
}

// set replaces name's body, or appends it.
func set(es []tent, name string, body []byte) []tent {
	out := append([]tent(nil), es...)
	for i := range out {
		if out[i].name == name {
			out[i].body = body
			return out
		}
	}
	return append(out, tent{name: name, body: body})
}

func addBlob(es []tent, body []byte) (v1.Hash, []tent) {
	h := v1.Hash{Algorithm: "sha256", Hex: sha256Hex(body)}
	return h, set(es, "blobs/sha256/"+h.Hex, body)
}

// imageOf is the index.json's first manifest and what it says.
func imageOf(t testing.TB, es []tent) (*v1.IndexManifest, *v1.Manifest) {
	t.Helper()
	var im v1.IndexManifest
	if err := json.Unmarshal(get(es, "index.json"), &im); err != nil {
		t.Fatal(err)
	}
	var m v1.Manifest
	if err := json.Unmarshal(get(es, "blobs/sha256/"+im.Manifests[0].Digest.Hex), &m); err != nil {
		t.Fatal(err)
	}
	return &im, &m
}

// pointTo makes index.json name only body, a new manifest or index blob.
func pointTo(t testing.TB, es []tent, mt types.MediaType, body []byte) []tent {
	h, es := addBlob(es, body)
	idx, _ := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex,
		Manifests: []v1.Descriptor{{MediaType: mt, Size: int64(len(body)), Digest: h}}})
	return set(es, "index.json", idx)
}

func flipped(b []byte) []byte {
	c := append([]byte(nil), b...)
	c[len(c)/2] ^= 0x55
	return c
}

// layoutOf writes img as an OCI layout and returns its files as entries.
func layoutOf(t testing.TB, img v1.Image) []tent {
	t.Helper()
	return layoutFiles(string(testutil.WriteLayout(t, t.TempDir(), img)))
}

// layoutFiles are the files of the OCI layout at dir as entries:
// oci-layout, index.json, then the blobs in name order.
func layoutFiles(dir string) []tent {
	var out []tent
	for _, name := range []string{"oci-layout", "index.json"} {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		out = append(out, tent{name: name, body: b})
	}
	blobs, _ := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	for _, b := range blobs {
		body, _ := os.ReadFile(filepath.Join(dir, "blobs", "sha256", b.Name()))
		out = append(out, tent{name: "blobs/sha256/" + b.Name(), body: body})
	}
	return out
}

// imageWithLayer is an image of one gzipped layer holding entries.
func imageWithLayer(t testing.TB, entries []tent) v1.Image {
	t.Helper()
	z := gz(t, writeTar(t, entries))
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(z)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func randomLayout(t testing.TB) []tent {
	t.Helper()
	return layoutOf(t, testutil.RandomImage(t, 512, 2))
}

// layoutCases change what a digest names or point at the wrong kind of
// thing; they apply to an OCI layout on disk and in an archive alike.
func layoutCases() []hostile {
	return []hostile{
		{name: "untouched", build: func(t testing.TB) []byte { return writeTar(t, randomLayout(t)) }},
		{name: "a layer's bytes changed", want: "the content was changed", build: func(t testing.TB) []byte {
			es := randomLayout(t)
			_, m := imageOf(t, es)
			n := "blobs/sha256/" + m.Layers[0].Digest.Hex
			return writeTar(t, set(es, n, flipped(get(es, n))))
		}},
		{name: "the config's bytes changed", want: "the content was changed", build: func(t testing.TB) []byte {
			es := randomLayout(t)
			_, m := imageOf(t, es)
			n := "blobs/sha256/" + m.Config.Digest.Hex
			return writeTar(t, set(es, n, append(get(es, n), ' ')))
		}},
		{name: "the manifest's bytes changed", want: "the content was changed", build: func(t testing.TB) []byte {
			es := randomLayout(t)
			im, _ := imageOf(t, es)
			n := "blobs/sha256/" + im.Manifests[0].Digest.Hex
			return writeTar(t, set(es, n, append(get(es, n), ' ')))
		}},
		{name: "the manifest swapped for another image's", want: "the content was changed", build: func(t testing.TB) []byte {
			es := randomLayout(t)
			im, _ := imageOf(t, es)
			other := randomLayout(t)
			oim, _ := imageOf(t, other)
			for _, e := range other {
				if e.name != "index.json" && e.name != "oci-layout" {
					es = set(es, e.name, e.body)
				}
			}
			return writeTar(t, set(es, "blobs/sha256/"+im.Manifests[0].Digest.Hex, get(other, "blobs/sha256/"+oim.Manifests[0].Digest.Hex)))
		}},
		{name: "an index whose child is a layer", want: "not a manifest", build: func(t testing.TB) []byte {
			es := randomLayout(t)
			_, m := imageOf(t, es)
			child, _ := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{m.Layers[0]}})
			return writeTar(t, pointTo(t, es, types.OCIImageIndex, child))
		}},
		{name: "index.json naming a layer as a manifest", want: "not", build: func(t testing.TB) []byte {
			es := randomLayout(t)
			_, m := imageOf(t, es)
			idx, _ := json.Marshal(v1.IndexManifest{SchemaVersion: 2, Manifests: []v1.Descriptor{{MediaType: types.OCIManifestSchema1, Size: m.Layers[0].Size, Digest: m.Layers[0].Digest}}})
			return writeTar(t, set(es, "index.json", idx))
		}},
		{name: "a manifest whose config is a huge blob", want: "larger than the budget", build: func(t testing.TB) []byte {
			es := randomLayout(t)
			_, m := imageOf(t, es)
			m.Config.Size = 1 << 30
			raw, _ := json.Marshal(m)
			return writeTar(t, pointTo(t, es, types.OCIManifestSchema1, raw))
		}},
		{name: "a manifest that declares 1 GiB", want: "larger than the budget", build: func(t testing.TB) []byte {
			es := randomLayout(t)
			im, _ := imageOf(t, es)
			im.Manifests[0].Size = 1 << 30
			raw, _ := json.Marshal(im)
			return writeTar(t, set(es, "index.json", raw))
		}},
		{name: "a truncated gzip layer", want: "the content was changed", build: func(t testing.TB) []byte {
			es := randomLayout(t)
			_, m := imageOf(t, es)
			n := "blobs/sha256/" + m.Layers[0].Digest.Hex
			return writeTar(t, set(es, n, get(es, n)[:m.Layers[0].Size/2]))
		}},
		{name: "a gzip bomb layer", want: "more bytes read than the budget", limits: tiny, build: func(t testing.TB) []byte {
			return writeTar(t, layoutOf(t, imageWithLayer(t, []tent{{name: "zeros", body: make([]byte, 12<<20)}})))
		}},
		{name: "a layer of hostile paths and a 1 GiB sparse status file", limits: big, note: "not analysed as a package database", build: func(t testing.TB) []byte {
			return writeTar(t, layoutOf(t, imageWithLayer(t, []tent{
				{name: "../../escape", body: []byte("x")},
				{name: "/abs/file", body: []byte("x")},
				{name: "hard", typ: tar.TypeLink, link: "../../etc/shadow"},
				{name: "soft", typ: tar.TypeSymlink, link: "/../../etc/shadow"},
				{name: "dev/sda", typ: tar.TypeBlock},
				{name: "dup", body: []byte("1")},
				{name: "dup", body: []byte("2")},
				{name: "var/lib/dpkg/status", sparse: 1 << 30},
			})))
		}},
	}
}

// archiveCases are attacks on the tar around the content.
func archiveCases(base func(t testing.TB) []tent) []hostile {
	with := func(extra ...tent) func(t testing.TB) []byte {
		return func(t testing.TB) []byte { return writeTar(t, append(base(t), extra...)) }
	}
	return []hostile{
		{name: "an entry climbing out with ..", want: "climbs out", build: with(tent{name: "../evil", body: []byte("x")})},
		{name: "an absolute name", want: "absolute name", build: with(tent{name: "/etc/evil", body: []byte("x")})},
		{name: "a hard link out", want: "links out", build: with(tent{name: "hl", typ: tar.TypeLink, link: "../../etc/shadow"})},
		{name: "a symlink out", want: "links out", build: with(tent{name: "blobs/sl", typ: tar.TypeSymlink, link: "../../../etc/shadow"})},
		{name: "an absolute symlink", want: "links out", build: with(tent{name: "sl", typ: tar.TypeSymlink, link: "/etc/shadow"})},
		{name: "a device", want: "device", build: with(tent{name: "null", typ: tar.TypeChar})},
		{name: "a fifo", want: "fifo", build: with(tent{name: "pipe", typ: tar.TypeFifo})},
		{name: "a name given twice", want: "appears twice", build: func(t testing.TB) []byte {
			es := base(t)
			return writeTar(t, append(es, es[len(es)-1]))
		}},
		{name: "a 1 GiB sparse entry", want: "sparse file", build: with(tent{name: "blobs/sha256/" + strings.Repeat("cd", 32), sparse: 1 << 30})},
		{name: "a truncated gzip archive", want: "truncated", build: func(t testing.TB) []byte {
			z := gz(t, writeTar(t, base(t)))
			return z[:len(z)*2/3]
		}},
		{name: "a truncated tar", want: "truncated", build: func(t testing.TB) []byte {
			b := writeTar(t, base(t))
			return b[:len(b)/2]
		}},
		{name: "a gzip bomb", want: "more temporary disk than the budget", build: func(t testing.TB) []byte {
			return gz(t, writeTar(t, append(base(t), tent{name: "zeros", body: make([]byte, 24<<20)})))
		}},
		{name: "too many entries", want: "more entries than the budget", limits: compare.Limits{Entries: 3}, build: with()},
		{name: "garbage", want: "not a tar archive", build: func(testing.TB) []byte { return bytes.Repeat([]byte("garbage\n"), 200) }},
	}
}

func ociArchiveCases() []hostile {
	cases := append(layoutCases(), archiveCases(randomLayout)...)
	return append(cases,
		hostile{name: "a 1 GiB sparse index.json", want: "sparse file", build: func(t testing.TB) []byte {
			es := randomLayout(t)
			for i := range es {
				if es[i].name == "index.json" {
					es[i] = tent{name: "index.json", sparse: 1 << 30}
				}
			}
			return writeTar(t, es)
		}},
		hostile{name: "index.json over the JSON budget", want: "larger than the budget", limits: smallJSON, build: func(t testing.TB) []byte {
			es := randomLayout(t)
			return writeTar(t, set(es, "index.json", append(get(es, "index.json"), bytes.Repeat([]byte(" "), 100<<10)...)))
		}},
		hostile{name: "no index.json", want: "no index.json", build: func(t testing.TB) []byte {
			return writeTar(t, []tent{{name: "oci-layout", body: []byte(`{"imageLayoutVersion":"1.0.0"}`)}})
		}},
		hostile{name: "blobs linked inside the archive", build: func(t testing.TB) []byte {
			es := randomLayout(t)
			_, m := imageOf(t, es)
			n := "blobs/sha256/" + m.Layers[0].Digest.Hex
			body := get(es, n)
			var out []tent
			for _, e := range es {
				if e.name != n {
					out = append(out, e)
				}
			}
			return writeTar(t, append(out, tent{name: "real", body: body}, tent{name: n, typ: tar.TypeSymlink, link: "../../real"}))
		}},
	)
}

// dockerEntries is a docker save tarball: one image whose layers are the
// given tar streams (gzipped when zip is set).
func dockerEntries(t testing.TB, zip bool, layers ...[]byte) []tent {
	t.Helper()
	cf := v1.ConfigFile{OS: "linux", Architecture: "amd64", RootFS: v1.RootFS{Type: "layers"}}
	var names []string
	var es []tent
	for i, l := range layers {
		cf.RootFS.DiffIDs = append(cf.RootFS.DiffIDs, v1.Hash{Algorithm: "sha256", Hex: sha256Hex(l)})
		n := fmt.Sprintf("l%d/layer.tar", i)
		body := l
		if zip {
			body = gz(t, l)
		}
		names = append(names, n)
		es = append(es, tent{name: n, body: body})
	}
	cfg, _ := json.Marshal(cf)
	cfgName := sha256Hex(cfg) + ".json"
	manifest, _ := json.Marshal([]map[string]any{{"Config": cfgName, "RepoTags": []string{"example.com/x:v1"}, "Layers": names}})
	return append([]tent{{name: "manifest.json", body: manifest}, {name: cfgName, body: cfg}}, es...)
}

func dockerConfigName(es []tent) string { return es[1].name }

func smallLayer(t testing.TB, name string) []byte {
	return writeTar(t, []tent{{name: name, body: []byte("hello " + name)}, {name: "bin/sh", mode: 0o755, body: []byte("#!")}})
}

func dockerBase(t testing.TB) []tent { return dockerEntries(t, false, smallLayer(t, "a")) }

func dockerCases() []hostile {
	cases := []hostile{
		{name: "untouched", build: func(t testing.TB) []byte { return writeTar(t, dockerBase(t)) }},
		{name: "untouched, gzipped layers", build: func(t testing.TB) []byte {
			return writeTar(t, dockerEntries(t, true, smallLayer(t, "a"), smallLayer(t, "b")))
		}},
		{name: "a layer's bytes changed", want: "diff_id", build: func(t testing.TB) []byte {
			es := dockerBase(t)
			return writeTar(t, set(es, "l0/layer.tar", smallLayer(t, "evil")))
		}},
		{name: "a gzipped layer's bytes changed", want: "layer", build: func(t testing.TB) []byte {
			es := dockerEntries(t, true, smallLayer(t, "a"))
			return writeTar(t, set(es, "l0/layer.tar", gz(t, smallLayer(t, "evil"))))
		}},
		{name: "the config's bytes changed", want: "the content was changed", build: func(t testing.TB) []byte {
			es := dockerBase(t)
			n := dockerConfigName(es)
			return writeTar(t, set(es, n, bytes.Replace(get(es, n), []byte(`"amd64"`), []byte(`"arm64"`), 1)))
		}},
		{name: "the manifest's layers swapped", want: "the content was changed", build: func(t testing.TB) []byte {
			es := dockerEntries(t, false, smallLayer(t, "a"), smallLayer(t, "b"))
			a, b := get(es, "l0/layer.tar"), get(es, "l1/layer.tar")
			return writeTar(t, set(set(es, "l0/layer.tar", b), "l1/layer.tar", a))
		}},
		{name: "a config that is a huge blob", want: "larger than the budget", limits: smallJSON, build: func(t testing.TB) []byte {
			es := dockerBase(t)
			m := bytes.ReplaceAll(get(es, "manifest.json"), []byte(dockerConfigName(es)), []byte("big.json"))
			return writeTar(t, append(set(es, "manifest.json", m), tent{name: "big.json", body: bytes.Repeat([]byte(" "), 100<<10)}))
		}},
		{name: "a 1 GiB sparse config.json", want: "sparse file", build: func(t testing.TB) []byte {
			es := dockerBase(t)
			m := bytes.ReplaceAll(get(es, "manifest.json"), []byte(dockerConfigName(es)), []byte("config.json"))
			return writeTar(t, append(set(es, "manifest.json", m), tent{name: "config.json", sparse: 1 << 30}))
		}},
		{name: "manifest.json over the JSON budget", want: "larger than the budget", limits: smallJSON, build: func(t testing.TB) []byte {
			es := dockerBase(t)
			return writeTar(t, set(es, "manifest.json", append(get(es, "manifest.json"), bytes.Repeat([]byte(" "), 100<<10)...)))
		}},
		{name: "a truncated gzip layer", want: "truncated", build: func(t testing.TB) []byte {
			es := dockerEntries(t, true, smallLayer(t, "a"))
			l := get(es, "l0/layer.tar")
			return writeTar(t, set(es, "l0/layer.tar", l[:len(l)/2]))
		}},
		{name: "a gzip bomb layer", want: "more bytes read than the budget", limits: tiny, build: func(t testing.TB) []byte {
			return writeTar(t, dockerEntries(t, true, writeTar(t, []tent{{name: "zeros", body: make([]byte, 12<<20)}})))
		}},
		{name: "ten 64 MiB sparse dpkg status files", limits: big, note: "not analysed as a package database", build: func(t testing.TB) []byte {
			var files []tent
			for i := range 10 {
				files = append(files, tent{name: fmt.Sprintf("var/lib/dpkg/status.d/p%d", i), sparse: 64 << 20})
			}
			return writeTar(t, dockerEntries(t, false, writeTar(t, files)))
		}},
		{name: "a 1 GiB sparse file over the bytes budget", want: "more bytes read than the budget", build: func(t testing.TB) []byte {
			return writeTar(t, dockerEntries(t, false, writeTar(t, []tent{{name: "huge", sparse: 1 << 30}})))
		}},
		{name: "a layer linked inside the archive", build: func(t testing.TB) []byte {
			es := dockerBase(t)
			m := bytes.ReplaceAll(get(es, "manifest.json"), []byte("l0/layer.tar"), []byte("l9/layer.tar"))
			return writeTar(t, append(set(es, "manifest.json", m), tent{name: "l9/layer.tar", typ: tar.TypeSymlink, link: "../l0/layer.tar"}))
		}},
		{name: "no manifest.json", want: "no manifest.json", build: func(t testing.TB) []byte {
			return writeTar(t, dockerBase(t)[1:])
		}},
		{name: "layers and diff_ids disagree", want: "diff_ids", build: func(t testing.TB) []byte {
			es := dockerBase(t)
			m := bytes.ReplaceAll(get(es, "manifest.json"), []byte(`["l0/layer.tar"]`), []byte(`["l0/layer.tar","l0/layer.tar"]`))
			return writeTar(t, set(es, "manifest.json", m))
		}},
	}
	return append(cases, archiveCases(dockerBase)...)
}

// runHostile opens and analyses ref and checks the case's verdict.
func runHostile(t *testing.T, tc hostile, ref string) {
	t.Helper()
	lim := small
	if tc.limits != (compare.Limits{}) {
		lim = tc.limits
	}
	var img *compare.Image
	var err error
	n := allocated(func() { img, err = openAndAnalyze(ref, compare.Options{TempDir: t.TempDir(), Limits: lim}) })
	if n > auditAllocBudget {
		t.Errorf("allocated %d MiB", n>>20)
	}
	if err != nil {
		t.Log(err)
	} else {
		t.Log(img.Notes)
	}
	switch {
	case tc.want != "":
		if err == nil {
			t.Fatalf("no error, want one containing %q", tc.want)
		}
		if msg := err.Error(); !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
			t.Fatalf("error %q: want one line containing %q", msg, tc.want)
		}
	case err != nil:
		t.Fatalf("error: %v", err)
	case tc.note != "":
		if !strings.Contains(strings.Join(img.Notes, "\n"), tc.note) {
			t.Fatalf("notes %q: want one containing %q", img.Notes, tc.note)
		}
	}
}

func writeArchive(t testing.TB, b []byte) string {
	f := filepath.Join(t.TempDir(), "archive.tar")
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestOCIArchiveHostile(t *testing.T) {
	for _, tc := range ociArchiveCases() {
		t.Run(tc.name, func(t *testing.T) {
			runHostile(t, tc, "oci-archive:"+writeArchive(t, tc.build(t)))
		})
	}
}

func TestDockerArchiveHostile(t *testing.T) {
	for _, tc := range dockerCases() {
		t.Run(tc.name, func(t *testing.T) {
			runHostile(t, tc, "docker-archive:"+writeArchive(t, tc.build(t)))
		})
	}
}

// untar writes a layout archive of the tables into dir.
func untar(t testing.TB, b []byte, dir string) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(hdr.Name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		body, _ := io.ReadAll(tr)
		if err := os.WriteFile(p, body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOCILayoutHostile(t *testing.T) {
	cases := append(layoutCases(),
		hostile{name: "a 1 GiB sparse index.json on disk", want: "larger than the budget", build: func(t testing.TB) []byte {
			return writeTar(t, randomLayout(t))
		}},
		hostile{name: "a 1 GiB sparse config on disk", want: "the content was changed", build: func(t testing.TB) []byte {
			return writeTar(t, randomLayout(t))
		}},
	)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			untar(t, tc.build(t), dir)
			switch {
			case strings.HasPrefix(tc.name, "a 1 GiB sparse index.json"):
				os.Truncate(filepath.Join(dir, "index.json"), 1<<30)
			case strings.HasPrefix(tc.name, "a 1 GiB sparse config"):
				p, _ := layout.FromPath(dir)
				idx, _ := p.ImageIndex()
				im, _ := idx.IndexManifest()
				img, _ := idx.Image(im.Manifests[0].Digest)
				m, _ := img.Manifest()
				os.Truncate(filepath.Join(dir, "blobs", "sha256", m.Config.Digest.Hex), 1<<30)
			}
			runHostile(t, tc, "oci:"+dir)
		})
	}
}

// TestLimitErrorIsClassified: a budget's error says which flag raises it
// and matches ErrLimit.
func TestLimitErrorIsClassified(t *testing.T) {
	f := writeArchive(t, writeTar(t, dockerBase(t)))
	_, err := openAndAnalyze("docker-archive:"+f, compare.Options{TempDir: t.TempDir(), Limits: compare.Limits{Entries: 2}})
	var le *compare.LimitError
	if !errors.As(err, &le) || !errors.Is(err, compare.ErrLimit) || le.Flag != "--max-entries" {
		t.Fatalf("err = %v, want a *LimitError for --max-entries", err)
	}
}

// TestSparseFilesCountAtDeclaredSize: the report gives a sparse file's
// declared size, and the bytes budget counts it so.
func TestSparseFilesCountAtDeclaredSize(t *testing.T) {
	f := writeArchive(t, writeTar(t, dockerEntries(t, false, writeTar(t, []tent{{name: "big", sparse: 64 << 20}}))))
	img, err := openAndAnalyze("docker-archive:"+f, compare.Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if img.FileBytes != 64<<20 {
		t.Errorf("FileBytes = %d, want %d", img.FileBytes, 64<<20)
	}
	_, err = openAndAnalyze("docker-archive:"+f, compare.Options{TempDir: t.TempDir(), Limits: compare.Limits{Bytes: 32 << 20}})
	if !errors.Is(err, compare.ErrLimit) {
		t.Errorf("a 64 MiB sparse file under a 32 MiB budget: err = %v", err)
	}
}

// FuzzOpenArchive feeds arbitrary bytes to the oci-archive and the
// docker-archive readers, within small budgets: they must end in an error
// or a report, never a panic, and errors are one line.
func FuzzOpenArchive(f *testing.F) {
	for _, tc := range ociArchiveCases() {
		f.Add(tc.build(f), false)
	}
	for _, tc := range dockerCases() {
		f.Add(tc.build(f), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, docker bool) {
		file := filepath.Join(t.TempDir(), "a.tar")
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
		ref := "oci-archive:" + file
		if docker {
			ref = "docker-archive:" + file
		}
		lim := compare.Limits{Bytes: 64 << 20, File: 1 << 20, Entries: 10_000, TempDisk: 8 << 20}
		src, err := compare.Open(context.Background(), ref, compare.Options{TempDir: t.TempDir(), Limits: lim, Jobs: 1})
		if err == nil {
			_, err = compare.Analyze(context.Background(), src, compare.Options{TempDir: t.TempDir(), Limits: lim, Jobs: 1})
			src.Close()
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Fatalf("a multi-line error: %q", err)
		}
	})
}
