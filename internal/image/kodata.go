package image

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/kilnbuild/kiln/internal/layer"
)

// ErrKoDataEscape is returned for a kodata symlink that leaves the module
// (or KoData.AllowedRoot).
var ErrKoDataEscape = errors.New("kodata symlink leaves the allowed directory")

// KoData says how a package's kodata directory goes into the image: ko's
// KO_DATA_PATH_ALLOWED_ROOT and KO_DATA_DATE_EPOCH.
type KoData struct {
	// AllowedRoot is the directory kodata's symlinks may point into, when
	// it holds the kodata directory, as ko takes it; "", or a directory
	// that does not hold kodata, means the module.
	AllowedRoot string
	// ModTime is the mtime of every kodata entry; zero means the image's
	// creation time (SOURCE_DATE_EPOCH).
	ModTime time.Time
}

// KoDataEntries lists the package's kodata directory for /var/run/ko, with
// symlinks allowed inside moduleDir (see KoData.Entries).
func KoDataEntries(kodata, moduleDir string) ([]layer.Entry, error) {
	return KoData{}.Entries(kodata, moduleDir)
}

// Entries lists the package's kodata directory for /var/run/ko. Symlinks
// are followed and their targets copied in, but only when the target stays
// inside the allowed root (moduleDir unless k.AllowedRoot holds kodata). A
// missing kodata directory yields no entries.
func (k KoData) Entries(kodata, moduleDir string) ([]layer.Entry, error) {
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
	hint := "copy the file into the module instead"
	if allowed := k.allowedRoot(real); allowed != "" {
		root, hint = allowed, "copy the file in, or set KO_DATA_PATH_ALLOWED_ROOT to a directory that holds it"
	}
	if !within(root, real) {
		return nil, fmt.Errorf("%w: %s is %s, outside %s", ErrKoDataEscape, kodata, real, root)
	}
	w := &kodataWalker{root: root, hint: hint, seen: map[string]bool{}}
	if err := w.walk(kodata, KoDataPath); err != nil {
		return nil, err
	}
	return w.entries, nil
}

// allowedRoot is k.AllowedRoot, absolute and with symlinks resolved, when
// it holds the kodata directory real; else "".
func (k KoData) allowedRoot(real string) string {
	if k.AllowedRoot == "" {
		return ""
	}
	abs, err := filepath.Abs(k.AllowedRoot)
	if err != nil {
		return ""
	}
	if resolved, err := filepath.EvalSymlinks(abs); err == nil {
		abs = resolved
	}
	if !within(abs, real) {
		return ""
	}
	return abs
}

type kodataWalker struct {
	root    string
	hint    string          // what to do about a symlink out of root
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
				return fmt.Errorf("%w: %s points to %s, outside %s: %s", ErrKoDataEscape, src, target, w.root, w.hint)
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
