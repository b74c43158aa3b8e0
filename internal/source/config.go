package source

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
)

// ConfigFile is the .ko.yaml (or .ko.yml, as ko also reads it) at a
// source's module root: its name relative to that root, and its bytes.
type ConfigFile struct {
	Name string
	Data []byte
	// Tree is the source's tree, for the files the config names.
	Tree Tree
}

// MaxConfig bounds a config file read at submission.
const MaxConfig = 1 << 20

// configNames are the names a config may have, in the order kiln looks
// for them (config.Find's): the first that exists applies.
var configNames = []string{".ko.yaml", ".ko.yml"}

// Config returns the config file at r's module root when r's tree is
// known at submission: a workspace, or an upload (read from the stored
// archive through readArchive's checks). It returns nil when the tree has
// none, and for git and module sources, whose trees are fetched only when
// the build runs. A config that is a symlink (or a hard link) is read
// through it, as kiln build reads it; one that points nowhere or out of
// the tree is refused, as the fetch would refuse it. A config larger than
// MaxConfig, or one that is not a regular file, is refused with
// ErrInvalid. The ConfigFile's Tree answers for the rest of the tree.
func (f *Fetcher) Config(ctx context.Context, r Resolved) (*ConfigFile, error) {
	switch r.Kind {
	case KindWorkspace:
		return f.workspaceConfig(r.Ref)
	case KindUpload:
		return f.uploadConfig(ctx, r)
	}
	return nil, nil
}

func (f *Fetcher) workspaceConfig(p string) (*ConfigFile, error) {
	dir, err := f.workspaceDir(p)
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("opening workspace path %q: %w", p, err)
	}
	defer root.Close()
	for _, name := range configNames {
		fi, err := root.Lstat(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading workspace path %q's %s: %w", p, name, err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			// Followed as kiln build follows it, if it stays in the tree.
			if fi, err = root.Stat(name); err != nil {
				return nil, fmt.Errorf("%w: symlink %s in workspace path %q points to nothing inside the tree or %w: fix its target", ErrInvalid, name, p, errNotLocal)
			}
		}
		switch {
		case !fi.Mode().IsRegular():
			return nil, invalidf("%s in workspace path %q is not a regular file", name, p)
		case fi.Size() > MaxConfig:
			return nil, invalidf("%s in workspace path %q is larger than %d bytes", name, p, MaxConfig)
		}
		file, err := root.Open(name)
		if err != nil {
			return nil, fmt.Errorf("reading workspace path %q's %s: %w", p, name, err)
		}
		defer file.Close()
		data, err := readConfig(file, name)
		if err != nil {
			return nil, err
		}
		return &ConfigFile{Name: name, Data: data, Tree: workspaceTree{dir}}, nil
	}
	return nil, nil
}

// readConfig reads a config's bytes, at most MaxConfig of them.
func readConfig(r io.Reader, name string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxConfig+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if len(data) > MaxConfig {
		return nil, invalidf("%s is larger than %d bytes", name, MaxConfig)
	}
	return data, nil
}

// errConfigFound stops reading an archive once the config that applies
// has been read.
var errConfigFound = errors.New("config found")

// foundConfig is a config's entry in an archive, and its bytes when it
// is a regular file.
type foundConfig struct {
	entry
	data []byte
}

func (f *Fetcher) uploadConfig(ctx context.Context, r Resolved) (*ConfigFile, error) {
	if _, err := f.resolveUpload(r.Ref, r.Subdir); err != nil {
		return nil, err
	}
	file, err := os.Open(f.uploadPath(r.Ref))
	if err != nil {
		return nil, fmt.Errorf("opening upload %s: %w", r.Ref, err)
	}
	defer file.Close()
	// got[i] is configNames[i] as the archive has it: nil when absent,
	// data nil when it is not a regular file.
	var got [2]*foundConfig
	err = readArchive(ctxReader{ctx, file}, f.Limits.withDefaults(), func(e entry) error {
		for i, name := range configNames {
			if e.Name != path.Join(r.Subdir, name) {
				continue
			}
			got[i] = &foundConfig{entry: e}
			if e.Type == tar.TypeReg {
				data, err := readConfig(e.Body, name)
				if err != nil {
					return err
				}
				got[i].data = data
			}
			if i == 0 { // the first name wins: the rest does not matter
				return errConfigFound
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, errConfigFound) {
		return nil, fmt.Errorf("reading upload %s: %w", r.Ref, err)
	}
	tree := &uploadTree{f: f, r: r}
	for i, c := range got {
		switch {
		case c == nil:
			continue
		case c.data != nil:
			return &ConfigFile{Name: configNames[i], Data: c.data, Tree: tree}, nil
		case c.Type == tar.TypeDir:
			return nil, invalidf("%s in the upload is not a regular file", configNames[i])
		}
		data, err := tree.linkedConfig(c.entry, configNames[i])
		if err != nil {
			return nil, err
		}
		return &ConfigFile{Name: configNames[i], Data: data, Tree: tree}, nil
	}
	return nil, nil
}
