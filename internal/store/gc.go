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

// GC removes blobs that no tag, no pushed manifest and no push in flight
// refers to, and interrupted uploads. It marks and sweeps under the sweep
// lock, so that a write that finds or makes a blob either precedes it
// (and left a record gc sees) or follows it (and finds the blob gone);
// see sweepLock. grace is how long a push may take from the first answer
// about a blob (a HEAD, a mount, an upload) to its manifest: answers older
// than that protect nothing, and uploads idle for longer are removed.
//
// In a process other than the server holding the store, it fails with
// ErrStoreServed: the server's protections are in its memory.
func (rs *Repositories) GC(ctx context.Context, grace time.Duration) (GCStats, error) {
	var st GCStats
	unlock, err := rs.layout.sweep.exclusive()
	if err != nil {
		return st, err
	}
	defer unlock()
	if err := rs.checkNotServed(); err != nil {
		return st, err
	}
	cutoff := time.Now().Add(-grace)
	old := func(e os.DirEntry) bool {
		fi, err := e.Info()
		return err == nil && fi.ModTime().Before(cutoff)
	}
	protected := rs.protected.prune(cutoff)

	marked := newReach()
	im, err := rs.layout.readIndex()
	if err != nil {
		return st, err
	}
	for _, d := range im.Manifests {
		marked.blobs[d.Digest] = true
		rs.walk(d.Digest, d.MediaType, marked)
	}
	var links []string
	err = rs.walkRoot(func(path string, d os.DirEntry) error {
		if d.IsDir() {
			return ctx.Err()
		}
		switch filepath.Base(filepath.Dir(path)) {
		case "_manifests":
			h := hashFromHex(d.Name())
			marked.blobs[h] = true
			if mt, err := os.ReadFile(path); err == nil {
				rs.walk(h, types.MediaType(mt), marked)
			}
		case "_blobs":
			links = append(links, path)
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	if hook := gcAfterMarkHook; hook != nil {
		hook()
	}

	for alg := range algorithms {
		blobDir := filepath.Join(rs.layout.dir, "blobs", alg)
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
			if strings.HasPrefix(e.Name(), ".tmp-") {
				// A staging file of a write that died: every live
				// writer holds the sweep lock. Old ones only, all the
				// same, for tools that write the layout without it.
				if old(e) && os.Remove(filepath.Join(blobDir, e.Name())) == nil {
					st.Uploads++
				}
				continue
			}
			if h := (v1.Hash{Algorithm: alg, Hex: e.Name()}); marked.blobs[h] || marked.manifests[h] != "" || protected[h] {
				continue
			}
			fi, _ := e.Info()
			if os.Remove(filepath.Join(blobDir, e.Name())) == nil {
				st.Blobs++
				st.Bytes += fi.Size()
			}
		}
		if err := rs.layout.syncDir(blobDir); err != nil {
			return st, err
		}
	}
	n, err := rs.RemoveUploads(grace)
	if err != nil {
		return st, err
	}
	st.Uploads += n
	for _, p := range links {
		if !exists(rs.layout.blobPath(hashFromHex(filepath.Base(p)))) && os.Remove(p) == nil {
			st.Links++
		}
	}
	return st, nil
}

// gcAfterMarkHook, when set (by tests), runs between gc's mark and its
// sweep.
var gcAfterMarkHook func()

// RemoveUploads removes uploads untouched for longer than grace (all of
// them when grace is 0) and reports how many it removed.
func (rs *Repositories) RemoveUploads(grace time.Duration) (int, error) {
	dir := filepath.Join(rs.layout.dir, "uploads")
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
