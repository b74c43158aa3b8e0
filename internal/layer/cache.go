package layer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/renameio/v2"
)

// Cache keeps built layers on disk, so an unchanged binary is not compressed
// again. It wraps Build; the caller names the content with a key (for a Go
// binary, its build ID) and the cache adds the options that shape the bytes.
//
//	DIR/<sha256>.layer   the compressed layer
//	DIR/<sha256>.json    its digest, diffID, size and media type
//
// Both files are renamed into place whole; the .json is written last, so
// its presence means the layer is complete.
type Cache struct {
	Dir string
}

type cacheEntry struct {
	Digest    v1.Hash         `json:"digest"`
	DiffID    v1.Hash         `json:"diffID"`
	Size      int64           `json:"size"`
	MediaType types.MediaType `json:"mediaType"`
	Algorithm Algorithm       `json:"algorithm"`
}

// Build returns the cached layer for key and opts, or builds and stores it.
// An empty key disables caching for this call.
func (c *Cache) Build(ctx context.Context, key string, entries []Entry, opts Options) (v1.Layer, error) {
	if key == "" || c == nil || c.Dir == "" {
		return Build(ctx, entries, opts)
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return Build(ctx, entries, opts)
	}
	id := c.id(key, entries, opts)
	base := filepath.Join(c.Dir, id)
	if l, ok := c.lookup(base); ok {
		return l, nil
	}
	built := opts
	built.Dir = c.Dir
	l, err := Build(ctx, entries, built)
	if err != nil {
		return nil, err
	}
	fl := l.(*fileLayer)
	if err := os.Rename(fl.path, base+".layer"); err != nil {
		os.Remove(fl.path)
		return Build(ctx, entries, opts)
	}
	fl.path = base + ".layer"
	meta, _ := json.Marshal(cacheEntry{Digest: fl.digest, DiffID: fl.diffID, Size: fl.size, MediaType: fl.mediaType, Algorithm: fl.algorithm})
	renameio.WriteFile(base+".json", meta, 0o600, renameio.WithTempDir(c.Dir)) // unwritten: built again next time
	return fl, nil
}

func (c *Cache) lookup(base string) (v1.Layer, bool) {
	raw, err := os.ReadFile(base + ".json")
	if err != nil {
		return nil, false
	}
	var e cacheEntry
	if json.Unmarshal(raw, &e) != nil {
		return nil, false
	}
	st, err := os.Stat(base + ".layer")
	if err != nil || st.Size() != e.Size {
		return nil, false
	}
	now := time.Now()
	os.Chtimes(base+".json", now, now) // its last use, for Prune
	return &fileLayer{path: base + ".layer", digest: e.Digest, diffID: e.DiffID, size: e.Size, mediaType: e.MediaType, algorithm: e.Algorithm}, true
}

// id hashes the key with everything else that decides the layer's bytes:
// entry metadata (not file contents: the key stands for those), compression
// and mtime.
func (c *Cache) id(key string, entries []Entry, opts Options) string {
	h := sha256.New()
	fmt.Fprintf(h, "kiln-layer-cache-v2\x00%s\x00%s\x00%d\x00%d\x00", key, opts.Compression.Algorithm, opts.Compression.EffectiveLevel(), opts.ModTime.Unix())
	for _, e := range entries {
		fmt.Fprintf(h, "%s\x00%d\x00%o\x00%d\x00%d\x00%s\x00%x\x00%v\x00", e.Path, e.Kind, e.Mode, e.UID, e.GID, e.Linkname, sha256.Sum256(e.Data), e.PAXRecords)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Prune removes the cached layers that are not among the keep most
// recently used (built or found) and were last used before usedBefore,
// and any file a build left half-written before usedBefore; it returns
// how many files it removed. A build reads its layer by name until it is
// published, so usedBefore must give a running build time to finish:
// minutes before now. The cache then holds at most keep layers plus those
// used since usedBefore. An entry's metadata goes first, so a layer being
// removed is never found.
func (c *Cache) Prune(keep int, usedBefore time.Time) (int, error) {
	if c == nil || c.Dir == "" {
		return 0, nil
	}
	ents, err := os.ReadDir(c.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("pruning the layer cache: %w", err)
	}
	type entry struct {
		base string
		used time.Time
	}
	var entries []entry
	var errs []error
	removed := 0
	for _, e := range ents {
		name := e.Name()
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		switch {
		case strings.HasSuffix(name, ".json"):
			entries = append(entries, entry{filepath.Join(c.Dir, strings.TrimSuffix(name, ".json")), info.ModTime()})
		case strings.HasSuffix(name, ".layer"):
			if _, err := os.Stat(filepath.Join(c.Dir, strings.TrimSuffix(name, ".layer")+".json")); errors.Is(err, fs.ErrNotExist) && info.ModTime().Before(usedBefore) {
				errs = append(errs, removeFile(filepath.Join(c.Dir, name), &removed)) // its metadata was never written
			}
		case info.ModTime().Before(usedBefore): // a build's temporary file, left by a crash
			errs = append(errs, removeFile(filepath.Join(c.Dir, name), &removed))
		}
	}
	if len(entries) > keep {
		slices.SortFunc(entries, func(a, b entry) int { return b.used.Compare(a.used) }) // newest first
		for _, e := range entries[max(keep, 0):] {
			if !e.used.Before(usedBefore) {
				continue
			}
			if err := os.Remove(e.base + ".json"); err != nil {
				if !errors.Is(err, fs.ErrNotExist) {
					errs = append(errs, err)
				}
				continue
			}
			removed++
			errs = append(errs, removeFile(e.base+".layer", &removed))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return removed, fmt.Errorf("pruning the layer cache: %w", err)
	}
	return removed, nil
}

// removeFile removes name, counting it; a file already gone is no error.
func removeFile(name string, n *int) error {
	err := os.Remove(name)
	if err == nil {
		*n++
		return nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
