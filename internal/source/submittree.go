package source

import (
	"archive/tar"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
)

// Tree is a source's tree as it is known at submission: a workspace
// directory, or an uploaded archive read through readArchive's checks.
// It answers what a build would find, so that what can be refused at
// submission is refused then.
type Tree interface {
	// Has reports whether rel (slash-separated, relative to the source's
	// root) names a file or directory there, with symlinks followed as the
	// build would follow them. A path that leaves the source's root is
	// refused with an error wrapping ErrInvalid.
	Has(rel string) (bool, error)
}

// outsidef is Has's refusal of a path that leaves the source's root.
func outsidef(rel string) error {
	return fmt.Errorf("%w: %s %w: keep build inputs in the source", ErrInvalid, rel, errNotLocal)
}

// workspaceTree is a workspace path's directory.
type workspaceTree struct{ dir string }

func (w workspaceTree) Has(rel string) (bool, error) {
	if path.IsAbs(rel) || !filepath.IsLocal(filepath.FromSlash(rel)) {
		return false, outsidef(rel)
	}
	root, err := filepath.EvalSymlinks(w.dir)
	if err != nil {
		return false, fmt.Errorf("opening the workspace: %w", err)
	}
	real, err := filepath.EvalSymlinks(filepath.Join(root, filepath.FromSlash(rel)))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading the workspace: %w", err)
	}
	if r, err := filepath.Rel(root, real); err != nil || (r != "." && !filepath.IsLocal(r)) {
		return false, outsidef(rel)
	}
	return true, nil
}

// uploadTree is an uploaded archive's tree below its subdir, indexed on
// first use: one more read of the stored archive, bounded by its limits
// (a local file, read without a context).
type uploadTree struct {
	f      *Fetcher
	r      Resolved
	once   sync.Once
	idx    *archiveIndex
	idxErr error
}

// archiveIndex is what an archive holds: every name (with the
// directories it implies) and its type, the symlinks' targets and the
// hard links' files.
type archiveIndex struct {
	types map[string]byte
	links map[string]string
	hard  map[string]string
}

func (f *Fetcher) indexUpload(r Resolved) (*archiveIndex, error) {
	file, err := os.Open(f.uploadPath(r.Ref))
	if err != nil {
		return nil, fmt.Errorf("opening upload %s: %w", r.Ref, err)
	}
	defer file.Close()
	idx := &archiveIndex{types: map[string]byte{".": tar.TypeDir}, links: map[string]string{}, hard: map[string]string{}}
	err = readArchive(file, f.Limits.withDefaults(), func(e entry) error {
		for d := path.Dir(e.Name); d != "."; d = path.Dir(d) {
			idx.types[d] = tar.TypeDir
		}
		idx.types[e.Name] = e.Type
		switch e.Type {
		case tar.TypeSymlink:
			idx.links[e.Name] = e.Linkname
		case tar.TypeLink:
			idx.hard[e.Name] = e.Linkname
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading upload %s: %w", r.Ref, err)
	}
	return idx, nil
}

// resolve follows name's links through the archive: the archive path it
// ends at.
func (idx *archiveIndex) resolve(name string) (string, error) {
	return resolvePath(idx.links, name, ".", name)
}

func (u *uploadTree) index() (*archiveIndex, error) {
	u.once.Do(func() { u.idx, u.idxErr = u.f.indexUpload(u.r) })
	return u.idx, u.idxErr
}

func (u *uploadTree) Has(rel string) (bool, error) {
	if path.IsAbs(rel) || !filepath.IsLocal(filepath.FromSlash(rel)) {
		return false, outsidef(rel)
	}
	if _, err := u.index(); err != nil {
		return false, err
	}
	root := u.r.Subdir
	if root == "" {
		root = "."
	}
	p, err := u.idx.resolve(path.Join(root, rel))
	if err != nil {
		return false, outsidef(rel)
	}
	if root != "." && p != root && !strings.HasPrefix(p, root+"/") {
		return false, outsidef(rel)
	}
	_, ok := u.idx.types[p]
	return ok, nil
}

// linkedConfig reads the config that the link e (a symlink or a hard
// link) stands for: the file it resolves to in the archive, as the build
// will find it once the archive is unpacked. A symlink that points
// nowhere, or at a directory, is refused as the fetch would refuse it.
func (u *uploadTree) linkedConfig(e entry, name string) ([]byte, error) {
	idx, err := u.index()
	if err != nil {
		return nil, err
	}
	target := e.Linkname // a hard link's file
	if e.Type == tar.TypeSymlink {
		if target, err = resolvePath(idx.links, e.Name, path.Dir(e.Name), e.Linkname); err != nil {
			return nil, err
		}
	}
	if h, ok := idx.hard[target]; ok {
		target = h
	}
	switch t, ok := idx.types[target]; {
	case !ok:
		return nil, invalidf("symlink %s points to nothing inside the tree: remove it or fix its target", name)
	case t != tar.TypeReg:
		return nil, invalidf("%s in the upload is not a regular file", name)
	}
	file, err := os.Open(u.f.uploadPath(u.r.Ref))
	if err != nil {
		return nil, fmt.Errorf("opening upload %s: %w", u.r.Ref, err)
	}
	defer file.Close()
	var data []byte
	err = readArchive(file, u.f.Limits.withDefaults(), func(e entry) error {
		if e.Name != target {
			return nil
		}
		var err error
		if data, err = readConfig(e.Body, name); err != nil {
			return err
		}
		return errConfigFound
	})
	if err != nil && !errors.Is(err, errConfigFound) {
		return nil, fmt.Errorf("reading upload %s: %w", u.r.Ref, err)
	}
	return data, nil
}
