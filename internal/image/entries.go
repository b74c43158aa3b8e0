package image

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/kilnbuild/kiln/internal/layer"
)

// BinaryEntries is the binary at /ko-app/<name>, mode 0555, owned by root,
// with file capabilities when caps (capability numbers) is not empty.
func BinaryEntries(binary, name string, caps []int) []layer.Entry {
	e := layer.Entry{Path: path.Join(AppDir, name), Kind: layer.File, Mode: 0o555, Source: binary}
	if len(caps) > 0 {
		e.PAXRecords = map[string]string{"SCHILY.xattr.security.capability": string(capabilityXattr(caps))}
	}
	return []layer.Entry{{Path: AppDir, Kind: layer.Dir, Mode: 0o555}, e}
}

// capabilityXattr encodes security.capability (vfs_cap_data revision 2) with
// caps permitted and effective. Revision 2 holds capabilities 0 to 63; other
// numbers (which config parsing rejects) are left out rather than panicking.
func capabilityXattr(caps []int) []byte {
	const revision2, effective = 0x02000000, 0x1
	var permitted [2]uint32
	for _, c := range caps {
		if c < 0 || c >= 64 {
			continue
		}
		permitted[c/32] |= 1 << (c % 32)
	}
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b[0:], revision2|effective)
	binary.LittleEndian.PutUint32(b[4:], permitted[0])
	binary.LittleEndian.PutUint32(b[12:], permitted[1])
	return b
}

// File is an extra file put into the image.
type File struct {
	Source string // on disk
	Path   string // absolute, in the image
	Mode   fs.FileMode
}

// FileEntries turns extra files into layer entries; a source that is missing
// or not a regular file is an error.
func FileEntries(files []File) ([]layer.Entry, error) {
	entries := make([]layer.Entry, 0, len(files))
	for _, f := range files {
		st, err := os.Stat(f.Source)
		if err != nil {
			return nil, fmt.Errorf("extra file %s: %w", f.Source, err)
		}
		if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("extra file %s: not a regular file", f.Source)
		}
		if !path.IsAbs(f.Path) {
			return nil, fmt.Errorf("extra file %s: image path %q must be absolute", f.Source, f.Path)
		}
		entries = append(entries, layer.Entry{Path: f.Path, Kind: layer.File, Mode: f.Mode, Source: f.Source})
	}
	return entries, nil
}

// ErrKoDataEscape is returned for a kodata symlink that leaves the module.
var ErrKoDataEscape = errors.New("kodata symlink leaves the module")

// KoDataEntries lists the package's kodata directory for /var/run/ko. Symlinks
// are followed and their targets copied in, but only when the target stays
// inside moduleDir. A missing kodata directory yields no entries.
func KoDataEntries(kodata, moduleDir string) ([]layer.Entry, error) {
	st, err := os.Stat(kodata)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading kodata: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("kodata %s is not a directory", kodata)
	}
	root, err := filepath.EvalSymlinks(moduleDir)
	if err != nil {
		return nil, fmt.Errorf("resolving module directory: %w", err)
	}
	real, err := filepath.EvalSymlinks(kodata)
	if err != nil {
		return nil, fmt.Errorf("reading kodata: %w", err)
	}
	if !within(root, real) {
		return nil, fmt.Errorf("%w: %s is %s, outside %s", ErrKoDataEscape, kodata, real, root)
	}
	w := &kodataWalker{root: root, seen: map[string]bool{}}
	if err := w.walk(kodata, KoDataPath); err != nil {
		return nil, err
	}
	return w.entries, nil
}

type kodataWalker struct {
	root    string
	seen    map[string]bool // real directories being walked, to stop cycles
	entries []layer.Entry
}

func (w *kodataWalker) walk(dir, imageDir string) error {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return fmt.Errorf("reading kodata %s: %w", dir, err)
	}
	if w.seen[real] {
		return fmt.Errorf("kodata %s: symlink cycle", dir)
	}
	w.seen[real] = true
	defer delete(w.seen, real)

	w.entries = append(w.entries, layer.Entry{Path: imageDir, Kind: layer.Dir, Mode: 0o755})
	des, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("reading kodata: %w", err)
	}
	for _, de := range des {
		src := filepath.Join(dir, de.Name())
		dst := path.Join(imageDir, de.Name())
		if de.Type()&fs.ModeSymlink != 0 {
			target, err := filepath.EvalSymlinks(src)
			if err != nil {
				return fmt.Errorf("kodata symlink %s: %w", src, err)
			}
			if !within(w.root, target) {
				return fmt.Errorf("%w: %s points to %s, outside %s: copy the file into the module instead", ErrKoDataEscape, src, target, w.root)
			}
			src = target
		}
		st, err := os.Stat(src)
		if err != nil {
			return fmt.Errorf("reading kodata: %w", err)
		}
		switch {
		case st.IsDir():
			if err := w.walk(src, dst); err != nil {
				return err
			}
		case st.Mode().IsRegular():
			mode := fs.FileMode(0o644)
			if st.Mode()&0o111 != 0 {
				mode = 0o755
			}
			w.entries = append(w.entries, layer.Entry{Path: dst, Kind: layer.File, Mode: mode, Source: src})
		default:
			return fmt.Errorf("kodata %s: not a regular file or directory", src)
		}
	}
	return nil
}

func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
