package source

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
)

// checkTree walks root and refuses what a build must not see: a symlink
// that resolves outside root (or nowhere), and anything that is not a
// directory, a regular file or such a symlink (devices, fifos, sockets).
// It is the physical check every fetched tree gets, whatever its kind.
func checkTree(root string) error {
	real, err := filepath.EvalSymlinks(root)
	if err != nil {
		return fmt.Errorf("checking the fetched tree: %w", err)
	}
	return filepath.WalkDir(real, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("checking the fetched tree: %w", err)
		}
		rel, _ := filepath.Rel(real, p)
		rel = filepath.ToSlash(rel)
		switch t := d.Type(); {
		case t.IsDir(), t.IsRegular():
			return nil
		case t&fs.ModeSymlink != 0:
			return checkLink(real, p, rel)
		default:
			return invalidf("%s is a %s: only files, directories and symlinks inside the tree are allowed", rel, kindOf(t))
		}
	})
}

// checkLink refuses the symlink at p (rel inside root) unless it is
// relative and resolves, through every link on the way, inside root.
func checkLink(root, p, rel string) error {
	target, err := os.Readlink(p)
	if err != nil {
		return fmt.Errorf("reading symlink %s: %w", rel, err)
	}
	if filepath.IsAbs(target) {
		return invalidf("symlink %s points to an absolute path: make it relative and inside the tree", rel)
	}
	dest, err := filepath.EvalSymlinks(p)
	if err != nil {
		return invalidf("symlink %s points to nothing inside the tree: remove it or fix its target", rel)
	}
	if r, err := filepath.Rel(root, dest); err != nil || (r != "." && !filepath.IsLocal(r)) {
		return fmt.Errorf("%w: symlink %s %w: make it point inside the tree", ErrInvalid, rel, errNotLocal)
	}
	return nil
}

func kindOf(m fs.FileMode) string {
	switch {
	case m&fs.ModeDevice != 0 || m&fs.ModeCharDevice != 0:
		return "device"
	case m&fs.ModeNamedPipe != 0:
		return "fifo"
	case m&fs.ModeSocket != 0:
		return "socket"
	}
	return "special file"
}

// copyTree copies src into dst (which exists), reading src through an
// os.Root so that no read leaves it. Directories named .git are left out;
// files are written owner-writable (0644, or 0755 when executable);
// symlinks are copied as they are after checkLink; at most maxFiles
// entries, and the bytes written count against b.
func copyTree(src, dst string, maxFiles int, b *budget) error {
	real, err := filepath.EvalSymlinks(src)
	if err != nil {
		return fmt.Errorf("opening the source tree: %w", err)
	}
	root, err := os.OpenRoot(real)
	if err != nil {
		return fmt.Errorf("opening the source tree: %w", err)
	}
	defer root.Close()
	n := 0
	return fs.WalkDir(root.FS(), ".", func(rel string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("copying the source tree: %w", err)
		}
		if rel == "." {
			return nil
		}
		if n++; n > maxFiles {
			return invalidf("the tree has more than %d entries: remove what the build does not need", maxFiles)
		}
		out := filepath.Join(dst, filepath.FromSlash(rel))
		switch t := d.Type(); {
		case t.IsDir():
			if path.Base(rel) == ".git" {
				return fs.SkipDir
			}
			return os.Mkdir(out, 0o755)
		case t.IsRegular():
			return copyFile(root, rel, out, b)
		case t&fs.ModeSymlink != 0:
			if err := checkLink(real, filepath.Join(real, filepath.FromSlash(rel)), rel); err != nil {
				return err
			}
			target, err := root.Readlink(rel)
			if err != nil {
				return fmt.Errorf("reading symlink %s: %w", rel, err)
			}
			return os.Symlink(target, out)
		default:
			return invalidf("%s is a %s: only files, directories and symlinks inside the tree are allowed", rel, kindOf(t))
		}
	})
}

func copyFile(root *os.Root, rel, out string, b *budget) (err error) {
	in, err := root.Open(rel)
	if err != nil {
		return fmt.Errorf("copying %s: %w", rel, err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return fmt.Errorf("copying %s: %w", rel, err)
	}
	if !fi.Mode().IsRegular() {
		return invalidf("%s changed into a %s while it was copied", rel, kindOf(fi.Mode()))
	}
	mode := os.FileMode(0o644)
	if fi.Mode()&0o111 != 0 {
		mode = 0o755
	}
	w, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("copying %s: %w", rel, err)
	}
	defer func() {
		if cerr := w.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("copying %s: %w", rel, cerr)
		}
	}()
	if _, err := io.Copy(b.writer(w), in); err != nil {
		return fmt.Errorf("copying %s: %w", rel, err)
	}
	return nil
}

// workspaceDir returns the real directory a workspace path names, or
// ErrInvalid when it is off, malformed, missing or outside.
func (f *Fetcher) workspaceDir(p string) (string, error) {
	if f.Workspace == "" {
		return "", invalidf("workspace sources are off: start the server with --workspace DIR, or upload an archive")
	}
	if p != "." && !localPath(p) {
		return "", invalidf("workspace path %q must be a clean relative path inside the workspace, like services/app", p)
	}
	ws, err := filepath.EvalSymlinks(f.Workspace)
	if err != nil {
		return "", fmt.Errorf("opening the workspace: %w", err)
	}
	dir, err := filepath.EvalSymlinks(filepath.Join(ws, filepath.FromSlash(p)))
	if errors.Is(err, fs.ErrNotExist) {
		return "", invalidf("workspace path %q does not exist: check its spelling", p)
	}
	if err != nil {
		return "", fmt.Errorf("opening workspace path %q: %w", p, err)
	}
	if r, err := filepath.Rel(ws, dir); err != nil || (r != "." && !filepath.IsLocal(r)) {
		return "", fmt.Errorf("%w: workspace path %q %w through a symlink: name a directory inside the workspace", ErrInvalid, p, errNotLocal)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return "", invalidf("workspace path %q is not a directory", p)
	}
	return dir, nil
}

func (f *Fetcher) resolveWorkspace(p string) (Resolved, error) {
	dir, err := f.workspaceDir(p)
	if err != nil {
		return Resolved{}, err
	}
	if err := checkTree(dir); err != nil {
		return Resolved{}, fmt.Errorf("workspace path %q: %w", p, err)
	}
	r := Resolved{}
	r.Kind, r.Ref = KindWorkspace, p
	return r, nil
}

func (f *Fetcher) fetchWorkspace(r Resolved, dir string) error {
	src, err := f.workspaceDir(r.Ref)
	if err != nil {
		return err
	}
	if err := copyTree(src, dir, f.Limits.withDefaults().MaxFiles, f.newBudget()); err != nil {
		return fmt.Errorf("workspace path %q: %w", r.Ref, err)
	}
	return nil
}
