package client

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// ModuleRoot is the directory of the go.mod at or above dir.
func ModuleRoot(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := abs; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod at or above %s: --remote sends a module; run it inside one", abs)
		}
	}
}

// Pack writes the module at root as a tar.gz to w: its git-tracked files
// when root is inside a git checkout, else every file below root except
// .git directories and the top-level bin. Entries are sorted, owned by
// 0:0, dated the epoch and given modes 0644 or 0755, so the same files
// always pack to the same bytes.
func Pack(root string, w io.Writer) error {
	files, err := trackedFiles(root)
	if err != nil {
		return err
	}
	if files == nil {
		if files, err = walkFiles(root); err != nil {
			return err
		}
	}
	sort.Strings(files)
	zw := gzip.NewWriter(w)
	tw := tar.NewWriter(zw)
	for _, name := range files {
		if err := addFile(tw, root, name); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

// trackedFiles lists what git tracks below root, as slash paths relative
// to it; nil when root is not in a checkout (or git is not installed).
func trackedFiles(root string) ([]string, error) {
	if _, err := exec.LookPath("git"); err != nil {
		return nil, nil
	}
	cmd := exec.Command("git", "-C", root, "ls-files", "-z", "--cached", "--", ".")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if strings.Contains(stderr.String(), "not a git repository") {
			return nil, nil
		}
		return nil, fmt.Errorf("listing the files git tracks in %s: %s", root, strings.TrimSpace(stderr.String()))
	}
	files := []string{}
	for _, name := range strings.Split(string(out), "\x00") {
		if name == "" {
			continue
		}
		// A tracked file deleted from the work tree is not sent, as a
		// local build would not see it either.
		if _, err := os.Lstat(filepath.Join(root, filepath.FromSlash(name))); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		files = append(files, name)
	}
	return files, nil
}

// walkFiles lists every file and symlink below root, skipping .git
// directories and the top-level bin.
func walkFiles(root string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if d.Name() == ".git" || rel == "bin" {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() || d.Type()&fs.ModeSymlink != 0 {
			files = append(files, rel)
		}
		return nil
	})
	return files, err
}

func addFile(tw *tar.Writer, root, name string) error {
	path := filepath.Join(root, filepath.FromSlash(name))
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	hdr := &tar.Header{Name: name, Mode: 0o644, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(path)
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, target, 0o777
		return tw.WriteHeader(hdr)
	case fi.Mode().IsRegular():
		if fi.Mode()&0o111 != 0 {
			hdr.Mode = 0o755
		}
		hdr.Typeflag, hdr.Size = tar.TypeReg, fi.Size()
	default:
		// Submodules (a tracked directory) and other kinds are not sent.
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := io.CopyN(tw, f, hdr.Size); err != nil {
		return fmt.Errorf("packing %s: %w", name, err)
	}
	return nil
}
