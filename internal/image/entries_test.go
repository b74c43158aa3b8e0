package image_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/internal/image"
	"github.com/kilnbuild/kiln/internal/layer"
	"github.com/kilnbuild/kiln/internal/testutil"
)

const capKey = "SCHILY.xattr.security.capability"

func TestBinaryEntries(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "server")
	if err := os.WriteFile(bin, []byte("\x7fELF"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		caps  []int
		xattr []byte // nil: no xattr
	}{
		{"no capabilities", nil, nil},
		{"empty list", []int{}, nil},
		{"CAP_NET_BIND_SERVICE", []int{10}, []byte{
			0x01, 0x00, 0x00, 0x02, // magic: VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE
			0x00, 0x04, 0x00, 0x00, // permitted[0]: 1<<10
			0x00, 0x00, 0x00, 0x00, // inheritable[0]
			0x00, 0x00, 0x00, 0x00, // permitted[1]
			0x00, 0x00, 0x00, 0x00, // inheritable[1]
		}},
		{"both words", []int{0, 31, 32, 40, 10, 10}, le(0x02000001, 1|1<<10|1<<31, 0, 1|1<<8, 0)},
		{"out of range numbers are left out", []int{-1, 64, 200, 12}, le(0x02000001, 1<<12, 0, 0, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es := image.BinaryEntries(bin, "server", tc.caps)
			if len(es) != 2 {
				t.Fatalf("%d entries, want 2", len(es))
			}
			dir, file := es[0], es[1]
			if dir.Path != "/ko-app" || dir.Kind != layer.Dir || dir.Mode != 0o555 || dir.UID != 0 || dir.GID != 0 {
				t.Errorf("dir entry = %+v", dir)
			}
			if file.Path != "/ko-app/server" || file.Kind != layer.File || file.Mode != 0o555 || file.Source != bin || file.UID != 0 || file.GID != 0 {
				t.Errorf("binary entry = %+v", file)
			}
			got, ok := file.PAXRecords[capKey]
			if tc.xattr == nil {
				if file.PAXRecords != nil {
					t.Errorf("PAXRecords = %q, want none", file.PAXRecords)
				}
				return
			}
			if !ok || len(file.PAXRecords) != 1 || !bytes.Equal([]byte(got), tc.xattr) {
				t.Errorf("capability xattr = % x, want % x", got, tc.xattr)
			}

			// And it survives into the layer's tar.
			l, err := layer.Build(context.Background(), es, layer.Options{Dir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			rc, err := l.Uncompressed()
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			tr := tar.NewReader(rc)
			var seen []string
			for {
				h, err := tr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				seen = append(seen, fmt.Sprintf("%s %o %d:%d", h.Name, h.Mode, h.Uid, h.Gid))
				if h.Name == "ko-app/server" && h.PAXRecords[capKey] != string(tc.xattr) {
					t.Errorf("tar xattr = % x", h.PAXRecords[capKey])
				}
			}
			if fmt.Sprint(seen) != "[ko-app/ 555 0:0 ko-app/server 555 0:0]" {
				t.Errorf("tar = %q", seen)
			}
		})
	}
}

func le(words ...uint32) []byte {
	b := make([]byte, 4*len(words))
	for i, w := range words {
		binary.LittleEndian.PutUint32(b[4*i:], w)
	}
	return b
}

func TestFileEntries(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.conf")
	if err := os.WriteFile(a, []byte("a"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := image.FileEntries([]image.File{
		{Source: a, Path: "/etc/app/a.conf", Mode: 0o644},
		{Source: a, Path: "/usr/local/bin/tool", Mode: 0o755 | fs.ModeSetuid},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []layer.Entry{
		{Path: "/etc/app/a.conf", Kind: layer.File, Mode: 0o644, Source: a},
		{Path: "/usr/local/bin/tool", Kind: layer.File, Mode: 0o755 | fs.ModeSetuid, Source: a},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("FileEntries = %+v, want %+v", got, want)
	}
	if got, err := image.FileEntries(nil); err != nil || len(got) != 0 {
		t.Errorf("FileEntries(nil) = %v, %v", got, err)
	}

	for _, tc := range []struct {
		name string
		f    image.File
		want string
	}{
		{"missing source", image.File{Source: filepath.Join(dir, "nope"), Path: "/x"}, "no such file or directory"},
		{"directory source", image.File{Source: dir, Path: "/x"}, "not a regular file"},
		{"relative image path", image.File{Source: a, Path: "etc/x"}, `image path "etc/x" must be absolute`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := image.FileEntries([]image.File{tc.f}); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("FileEntries = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// tree makes files (content "path", mode) and symlinks ("->target") under root.
func tree(t *testing.T, root string, spec map[string]string) {
	t.Helper()
	for p, v := range spec {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasPrefix(v, "->"):
			if err := os.Symlink(strings.TrimPrefix(v, "->"), full); err != nil {
				t.Fatal(err)
			}
		case v == "dir":
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
		default:
			var mode fs.FileMode
			if _, err := fmt.Sscanf(v, "%o", &mode); err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			if err := os.WriteFile(full, []byte(p), mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(full, mode); err != nil { // umask
				t.Fatal(err)
			}
		}
	}
}

type row struct {
	path   string
	kind   layer.Kind
	mode   fs.FileMode
	source string // relative to the module; "" for directories
}

func rows(t *testing.T, module string, es []layer.Entry) []row {
	t.Helper()
	real, err := filepath.EvalSymlinks(module)
	if err != nil {
		t.Fatal(err)
	}
	var out []row
	for _, e := range es {
		src := ""
		if e.Source != "" {
			rel, err := filepath.Rel(real, e.Source)
			if err != nil || strings.HasPrefix(rel, "..") {
				rel, _ = filepath.Rel(module, e.Source)
			}
			src = filepath.ToSlash(rel)
		}
		if e.UID != 0 || e.GID != 0 || e.PAXRecords != nil || e.Data != nil {
			t.Errorf("%s: unexpected owner or data: %+v", e.Path, e)
		}
		out = append(out, row{e.Path, e.Kind, e.Mode, src})
	}
	return out
}

func TestKoDataEntries(t *testing.T) {
	const kd = "cmd/app/kodata"
	for _, tc := range []struct {
		name string
		spec map[string]string
		want []row
	}{
		{
			name: "missing",
			spec: map[string]string{"cmd/app/main.go": "644"},
			want: nil,
		},
		{
			name: "empty",
			spec: map[string]string{kd: "dir"},
			want: []row{{"/var/run/ko", layer.Dir, 0o755, ""}},
		},
		{
			name: "nested, modes normalised, executable kept",
			spec: map[string]string{
				kd + "/index.html":       "600",
				kd + "/run.sh":           "700",
				kd + "/tool":             "751",
				kd + "/sub/deeper/c.txt": "644",
				kd + "/sub/b.txt":        "664",
				kd + "/.hidden":          "644",
				"cmd/app/main.go":        "644",
			},
			want: []row{
				{"/var/run/ko", layer.Dir, 0o755, ""},
				{"/var/run/ko/.hidden", layer.File, 0o644, kd + "/.hidden"},
				{"/var/run/ko/index.html", layer.File, 0o644, kd + "/index.html"},
				{"/var/run/ko/run.sh", layer.File, 0o755, kd + "/run.sh"},
				{"/var/run/ko/sub", layer.Dir, 0o755, ""},
				{"/var/run/ko/sub/b.txt", layer.File, 0o644, kd + "/sub/b.txt"},
				{"/var/run/ko/sub/deeper", layer.Dir, 0o755, ""},
				{"/var/run/ko/sub/deeper/c.txt", layer.File, 0o644, kd + "/sub/deeper/c.txt"},
				{"/var/run/ko/tool", layer.File, 0o755, kd + "/tool"},
			},
		},
		{
			name: "symlinks inside the module are followed",
			spec: map[string]string{
				"README.md":       "644",
				"assets/logo.svg": "644",
				"assets/bin/x":    "755",
				kd + "/readme":    "->../../../README.md",
				kd + "/assets":    "->../../../assets",
				kd + "/self":      "->readme",
			},
			want: []row{
				{"/var/run/ko", layer.Dir, 0o755, ""},
				{"/var/run/ko/assets", layer.Dir, 0o755, ""},
				{"/var/run/ko/assets/bin", layer.Dir, 0o755, ""},
				{"/var/run/ko/assets/bin/x", layer.File, 0o755, "assets/bin/x"},
				{"/var/run/ko/assets/logo.svg", layer.File, 0o644, "assets/logo.svg"},
				{"/var/run/ko/readme", layer.File, 0o644, "README.md"},
				{"/var/run/ko/self", layer.File, 0o644, "README.md"},
			},
		},
		{
			name: "the same directory twice, not a cycle",
			spec: map[string]string{
				"shared/a":  "644",
				kd + "/one": "->../../../shared",
				kd + "/two": "->../../../shared",
			},
			want: []row{
				{"/var/run/ko", layer.Dir, 0o755, ""},
				{"/var/run/ko/one", layer.Dir, 0o755, ""},
				{"/var/run/ko/one/a", layer.File, 0o644, "shared/a"},
				{"/var/run/ko/two", layer.Dir, 0o755, ""},
				{"/var/run/ko/two/a", layer.File, 0o644, "shared/a"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			module := t.TempDir()
			tree(t, module, tc.spec)
			es, err := image.KoDataEntries(filepath.Join(module, kd), module)
			if err != nil {
				t.Fatal(err)
			}
			if got := rows(t, module, es); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("entries:\n got %v\nwant %v", got, tc.want)
			}
			if len(es) == 0 {
				return
			}
			// They make a layer, with the symlinks' targets copied in.
			l, err := layer.Build(context.Background(), es, layer.Options{Dir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			var paths []string
			for _, r := range tc.want {
				paths = append(paths, r.path[1:])
			}
			hdrs, data := testutil.LayerFiles(t, l, paths...)
			for name, h := range hdrs {
				if h.Typeflag == tar.TypeSymlink {
					t.Errorf("%s is a symlink in the layer", name)
				}
			}
			for _, r := range tc.want {
				if h := hdrs[r.path[1:]]; h != nil && h.Typeflag == tar.TypeReg && string(data[r.path[1:]]) != r.source {
					t.Errorf("%s holds %q, want the content of %s", h.Name, data[r.path[1:]], r.source)
				}
			}
		})
	}
}

func TestKoDataEntriesErrors(t *testing.T) {
	outside := t.TempDir()
	tree(t, outside, map[string]string{"secret": "600", "dir/x": "644"})
	const kd = "cmd/app/kodata"
	for _, tc := range []struct {
		name string
		spec map[string]string
		is   error
		want string
	}{
		{"symlink to a file outside", map[string]string{kd + "/key": "->" + filepath.Join(outside, "secret")}, image.ErrKoDataEscape, "outside"},
		{"relative symlink out of the module", map[string]string{kd + "/key": "->../../../../" + filepath.Base(outside) + "/secret"}, image.ErrKoDataEscape, "copy the file into the module instead"},
		{"symlink to a directory outside", map[string]string{kd + "/d": "->" + filepath.Join(outside, "dir")}, image.ErrKoDataEscape, ""},
		{"symlink to the filesystem root", map[string]string{kd + "/root": "->/"}, image.ErrKoDataEscape, ""},
		{"kodata itself links outside", map[string]string{"cmd/app/kodata": "->" + filepath.Join(outside, "dir")}, image.ErrKoDataEscape, ""},
		{"dangling symlink", map[string]string{kd + "/gone": "->nowhere"}, nil, "kodata symlink"},
		{"directory cycle", map[string]string{kd + "/sub/loop": "->.."}, nil, "symlink cycle"},
		{"self cycle", map[string]string{kd + "/me": "->me"}, nil, "kodata symlink"},
		{"kodata is a file", map[string]string{kd: "644"}, nil, "is not a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// outside and module are siblings under the test's temp root.
			module := filepath.Join(filepath.Dir(outside), "module-"+strings.ReplaceAll(tc.name, " ", "-"))
			if err := os.Mkdir(module, 0o755); err != nil {
				t.Fatal(err)
			}
			tree(t, module, tc.spec)
			es, err := image.KoDataEntries(filepath.Join(module, kd), module)
			if err == nil || (tc.is != nil && !errors.Is(err, tc.is)) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("KoDataEntries = %d entries, %v; want an error (is %v) containing %q", len(es), err, tc.is, tc.want)
			}
		})
	}
}

// The module directory may itself be reached through a symlink.
func TestKoDataEntriesModuleThroughSymlink(t *testing.T) {
	root := t.TempDir()
	module := filepath.Join(root, "real")
	tree(t, module, map[string]string{"a.txt": "644", "cmd/kodata/a": "->../../a.txt"})
	alias := filepath.Join(root, "alias")
	if err := os.Symlink(module, alias); err != nil {
		t.Fatal(err)
	}
	es, err := image.KoDataEntries(filepath.Join(alias, "cmd", "kodata"), alias)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 || es[1].Path != "/var/run/ko/a" || es[1].Source != filepath.Join(module, "a.txt") {
		t.Errorf("entries = %+v", es)
	}
}
