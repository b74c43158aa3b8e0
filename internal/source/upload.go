package source

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
)

// Uploads are kept in UploadDir as they were sent, named by their digest:
//
//	UploadDir/
//	├── <sha256 hex>.tar.gz   an archive that passed readArchive's checks
//	└── .upload-*             one being received; removed on refusal
//
// The ID of an upload is that hex digest; records keep "sha256:<hex>" as
// the source's Hash. Fetch reads the archive again through the same
// checks and compares its digest with the ID.

// SaveUpload stores the tar.gz read from r and returns its ID. Every entry
// is checked as it is read (see readArchive); a refused archive leaves
// nothing behind. Saving the same archive twice gives the same ID; created
// is false when it was already stored, so that a caller that refuses
// the build afterwards removes only what it added.
func (f *Fetcher) SaveUpload(ctx context.Context, r io.Reader) (id string, created bool, err error) {
	if f.UploadDir == "" {
		return "", false, errors.New("saving an upload: the server has no upload directory configured")
	}
	if err := os.MkdirAll(f.UploadDir, 0o755); err != nil {
		return "", false, fmt.Errorf("saving an upload: %w", err)
	}
	tmp, err := os.CreateTemp(f.UploadDir, ".upload-*")
	if err != nil {
		return "", false, fmt.Errorf("saving an upload: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	tee := io.TeeReader(ctxReader{ctx, r}, io.MultiWriter(tmp, h))
	if err := readArchive(tee, f.Limits.withDefaults(), func(e entry) error { return nil }); err != nil {
		return "", false, err
	}
	if err := tmp.Sync(); err != nil {
		return "", false, fmt.Errorf("saving an upload: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", false, fmt.Errorf("saving an upload: %w", err)
	}
	id = hex.EncodeToString(h.Sum(nil))
	// A link, not a rename, tells whether the archive was there already.
	err = os.Link(tmp.Name(), f.uploadPath(id))
	os.Remove(tmp.Name())
	switch {
	case errors.Is(err, fs.ErrExist):
		return id, false, nil
	case err != nil:
		return "", false, fmt.Errorf("saving an upload: %w", err)
	}
	return id, true, nil
}

// DeleteUpload removes an upload; a missing one is not an error.
func (f *Fetcher) DeleteUpload(id string) error {
	if !validID(id) {
		return invalidf("upload ID %q is not a sha256 hex digest", id)
	}
	if err := os.Remove(f.uploadPath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("deleting upload %s: %w", id, err)
	}
	return nil
}

func (f *Fetcher) uploadPath(id string) string {
	return filepath.Join(f.UploadDir, id+".tar.gz")
}

func validID(id string) bool {
	if len(id) != 2*sha256.Size {
		return false
	}
	for _, c := range id {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func (f *Fetcher) resolveUpload(id, subdir string) (Resolved, error) {
	if !validID(id) {
		return Resolved{}, invalidf("upload ID %q is not a sha256 hex digest: use the ID that POST /api/v1/sources returned", id)
	}
	if f.UploadDir == "" {
		return Resolved{}, invalidf("upload %s does not exist: upload the archive first", id)
	}
	if _, err := os.Stat(f.uploadPath(id)); errors.Is(err, fs.ErrNotExist) {
		return Resolved{}, invalidf("upload %s does not exist: upload the archive first", id)
	} else if err != nil {
		return Resolved{}, fmt.Errorf("opening upload %s: %w", id, err)
	}
	r := Resolved{}
	r.Kind, r.Ref, r.Hash, r.Subdir = KindUpload, id, "sha256:"+id, subdir
	return r, nil
}

// fetchUpload unpacks the stored archive into dir through an os.Root (no
// write can leave dir), checking its digest against the ID.
func (f *Fetcher) fetchUpload(ctx context.Context, r Resolved, dir string) error {
	if _, err := f.resolveUpload(r.Ref, r.Subdir); err != nil {
		return err
	}
	file, err := os.Open(f.uploadPath(r.Ref))
	if err != nil {
		return fmt.Errorf("opening upload %s: %w", r.Ref, err)
	}
	defer file.Close()
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("unpacking upload %s: %w", r.Ref, err)
	}
	defer root.Close()
	h := sha256.New()
	err = readArchive(io.TeeReader(ctxReader{ctx, file}, h), f.Limits.withDefaults(), func(e entry) error {
		return extract(root, e)
	})
	if err != nil {
		return fmt.Errorf("unpacking upload %s: %w", r.Ref, err)
	}
	return checkDigest(h, r.Ref)
}

func checkDigest(h hash.Hash, id string) error {
	if got := hex.EncodeToString(h.Sum(nil)); got != id {
		return fmt.Errorf("upload %s: the stored archive's digest is %s: it changed on disk; upload it again", id, got)
	}
	return nil
}

// extract writes one checked entry under root.
func extract(root *os.Root, e entry) error {
	name := filepath.FromSlash(e.Name)
	if dir := path.Dir(e.Name); dir != "." {
		if err := root.MkdirAll(filepath.FromSlash(dir), 0o755); err != nil {
			return fmt.Errorf("unpacking %s: %w", e.Name, err)
		}
	}
	switch e.Type {
	case tar.TypeDir:
		if err := root.Mkdir(name, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("unpacking %s: %w", e.Name, err)
		}
		return nil
	case tar.TypeSymlink:
		return root.Symlink(e.Linkname, name)
	case tar.TypeLink:
		return root.Link(filepath.FromSlash(e.Linkname), name)
	}
	mode := os.FileMode(0o644)
	if e.Exec {
		mode = 0o755
	}
	w, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("unpacking %s: %w", e.Name, err)
	}
	if _, err := io.Copy(w, e.Body); err != nil {
		w.Close()
		return err // the archive's error, classified by readArchive's caller
	}
	return w.Close()
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
