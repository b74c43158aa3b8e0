package layer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

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
