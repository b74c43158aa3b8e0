package store

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// GCStats says what a collection removed.
type GCStats struct {
	Blobs   int   // unreferenced blobs removed
	Bytes   int64 // their size
	Uploads int   // interrupted uploads and staging files removed
	Links   int   // repository links to removed blobs
}

// GC removes blobs that no tag and no pushed manifest refers to, and
// interrupted uploads. Anything younger than grace is kept, so a push in
// flight (blobs first, manifest last) is never cut short.
func (l *Layout) GC(ctx context.Context, grace time.Duration) (GCStats, error) {
	var st GCStats
	unlock, err := l.lock()
	if err != nil {
		return st, err
	}
	defer unlock()
	cutoff := time.Now().Add(-grace)
	old := func(e os.DirEntry) bool {
		fi, err := e.Info()
		return err == nil && fi.ModTime().Before(cutoff)
	}

	marked := newReach()
	im, err := l.readIndex()
	if err != nil {
		return st, err
	}
	for _, d := range im.Manifests {
		marked.blobs[d.Digest] = true
		l.walk(d.Digest, d.MediaType, marked)
	}
	var links []string
	root := filepath.Join(l.dir, "repositories")
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			return ctx.Err()
		}
		switch filepath.Base(filepath.Dir(path)) {
		case "_manifests":
			h := hashFromHex(d.Name())
			marked.blobs[h] = true
			if mt, err := os.ReadFile(path); err == nil {
				l.walk(h, types.MediaType(mt), marked)
			}
		case "_blobs":
			links = append(links, path)
		}
		return nil
	})
	if err != nil {
		return st, err
	}

	for alg := range algorithms {
		blobDir := filepath.Join(l.dir, "blobs", alg)
		entries, err := os.ReadDir(blobDir)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return st, err
		}
		for _, e := range entries {
			if err := ctx.Err(); err != nil {
				return st, err
			}
			if !old(e) {
				continue
			}
			if strings.HasPrefix(e.Name(), ".tmp-") {
				if os.Remove(filepath.Join(blobDir, e.Name())) == nil {
					st.Uploads++
				}
				continue
			}
			if h := (v1.Hash{Algorithm: alg, Hex: e.Name()}); marked.blobs[h] || marked.manifests[h] != "" {
				continue
			}
			fi, _ := e.Info()
			if os.Remove(filepath.Join(blobDir, e.Name())) == nil {
				st.Blobs++
				st.Bytes += fi.Size()
			}
		}
		if err := l.syncDir(blobDir); err != nil {
			return st, err
		}
	}
	n, err := l.RemoveUploads(grace)
	if err != nil {
		return st, err
	}
	st.Uploads += n
	for _, p := range links {
		if !exists(l.blobPath(hashFromHex(filepath.Base(p)))) && os.Remove(p) == nil {
			st.Links++
		}
	}
	return st, nil
}

// RemoveUploads removes uploads untouched for longer than grace (all of
// them when grace is 0) and reports how many it removed.
func (l *Layout) RemoveUploads(grace time.Duration) (int, error) {
	dir := filepath.Join(l.dir, "uploads")
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	cutoff, n := time.Now().Add(-grace), 0
	for _, e := range entries {
		fi, err := e.Info()
		if err == nil && (grace == 0 || fi.ModTime().Before(cutoff)) && os.Remove(filepath.Join(dir, e.Name())) == nil {
			n++
		}
	}
	return n, nil
}
