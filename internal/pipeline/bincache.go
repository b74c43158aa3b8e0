package pipeline

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/kilnbuild/kiln/internal/layer"
)

// The binary cache, CacheDir/bin: one entry per package directory, import
// path, platform and settings, where `go build -o` links the binary and
// finds it up to date the next time (it then writes nothing).
//
//	CACHE/bin/
//	  3f9c…/           an entry (the first 32 hex digits of its key's SHA-256)
//	    .lock          flock'd while go build writes the binary; its mtime is the last use
//	    hello          the binary
//
// lockBinary takes an entry's lock and marks it used, and its unlock marks
// it again; PruneBinaries keeps the most recently used entries and any
// used lately. An entry removed by a prune while a build waits for its
// lock is made again: the build then links anew.

// lockBinary locks the entry dir (making it if need be), marks it used,
// and returns the unlock.
func lockBinary(dir string) (func(), error) {
	for range 10 {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("build cache: %w", err)
		}
		lockPath := filepath.Join(dir, ".lock")
		lock, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o644)
		if errors.Is(err, fs.ErrNotExist) {
			continue // pruned since MkdirAll: make it again
		}
		if err != nil {
			return nil, fmt.Errorf("build cache: %w", err)
		}
		if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
			lock.Close()
			return nil, fmt.Errorf("build cache: %w", err)
		}
		held, err := lock.Stat()
		now, lerr := os.Stat(lockPath)
		if err == nil && lerr == nil && os.SameFile(held, now) {
			touch(lockPath)
			return func() {
				// The binary is read (layered) after the unlock: the
				// use ends now, not when the compile started.
				touch(lockPath)
				lock.Close()
			}, nil
		}
		lock.Close() // pruned while we waited: make the entry again
	}
	return nil, fmt.Errorf("build cache: %s keeps being removed while it is locked: is a prune running in a loop?", dir)
}

// touch marks an entry's last use.
func touch(lockPath string) {
	t := time.Now()
	os.Chtimes(lockPath, t, t)
}

// PruneBinaries removes the entries of the binary cache under cacheDir
// (the CacheDir of Options) that are not among the keep most recently
// used and were last used before usedBefore, leaving any entry a build
// holds. It returns how many it removed. A build reads its binary after
// the lock is released, so usedBefore must leave it time to: a few
// minutes before now. The cache then holds at most keep entries plus those
// used since usedBefore.
func PruneBinaries(cacheDir string, keep int, usedBefore time.Time) (int, error) {
	root := filepath.Join(cacheDir, "bin")
	ents, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("pruning the binary cache: %w", err)
	}
	type entry struct {
		dir  string
		used time.Time
	}
	var entries []entry
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(root, e.Name())
		fi, err := os.Stat(filepath.Join(dir, ".lock"))
		if err != nil {
			continue // being made or removed
		}
		entries = append(entries, entry{dir, fi.ModTime()})
	}
	if len(entries) <= keep {
		return 0, nil
	}
	slices.SortFunc(entries, func(a, b entry) int { return b.used.Compare(a.used) }) // newest first
	removed := 0
	var errs []error
	for _, e := range entries[max(keep, 0):] {
		if !e.used.Before(usedBefore) {
			continue
		}
		ok, err := removeUnlocked(e.dir)
		if ok {
			removed++
		}
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return removed, fmt.Errorf("pruning the binary cache: %w", err)
	}
	return removed, nil
}

// The caches' bound. The CLI and the service apply it after each build
// (request.Run). A package built again with the same settings finds its
// binary up to date and is not linked again, so the binary cache holds one
// entry per package directory, platform and settings, and each new
// package, flag set or worktree adds one; the layer cache gains a layer
// for every new binary (each edit). The entries of each beyond the
// DefaultKeepBinaries most recently used are removed, except those used
// within DefaultBinaryGrace: a build reads its binary (to layer it) just
// after the compile and its layer until it is published, and a running
// build's entries must not go. 32 entries cover e.g. 2 service slots × 8
// services × 2 platforms; a miss costs one link (a second or so) or one
// compression.
const (
	DefaultKeepBinaries = 32
	DefaultBinaryGrace  = 10 * time.Minute
)

// CacheBound is a bound on the binary and layer caches under a CacheDir:
// Keep entries of each, and any used within Grace; zero fields mean the
// defaults.
type CacheBound struct {
	Keep  int
	Grace time.Duration
}

// Prune applies the bound to the caches under cacheDir ("" is no cache)
// and returns how many binaries and layer files it removed. On caches
// within Keep it reads two directories and stats their entries, nothing
// more: a rebuild that changed nothing pays a few dozen stat calls.
func (b CacheBound) Prune(cacheDir string) (int, error) {
	if cacheDir == "" {
		return 0, nil
	}
	keep, grace := b.Keep, b.Grace
	if keep <= 0 {
		keep = DefaultKeepBinaries
	}
	if grace <= 0 {
		grace = DefaultBinaryGrace
	}
	usedBefore := time.Now().Add(-grace)
	bins, berr := PruneBinaries(cacheDir, keep, usedBefore)
	layers, lerr := layerCache(cacheDir).Prune(keep, usedBefore)
	return bins + layers, errors.Join(berr, lerr)
}

// removeUnlocked removes an entry unless a build holds its lock.
func removeUnlocked(dir string) (bool, error) {
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR, 0)
	if err != nil {
		return false, nil // gone already
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return false, nil // in use: kept
	}
	return true, os.RemoveAll(dir)
}

// privateLink links the cached binary bin into this run's temporary
// directory while the cache entry's lock is held, and returns the link.
// The entry is shared: once the lock is released another build of the
// same package may link it again, and the layer must read the binary this
// build linked, not a file that changes under it. go build replaces its
// output file rather than rewriting it, so the link keeps this build's
// bytes. Across file systems it copies.
func (r *buildRun) privateLink(bin string) (string, error) {
	dir, err := os.MkdirTemp(r.tmp, "bin-*")
	if err != nil {
		return "", fmt.Errorf("build cache: %w", err)
	}
	p := filepath.Join(dir, filepath.Base(bin))
	if err := os.Link(bin, p); err == nil {
		return p, nil
	}
	in, err := os.Open(bin)
	if err != nil {
		return "", fmt.Errorf("build cache: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if err != nil {
		return "", fmt.Errorf("build cache: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return "", fmt.Errorf("build cache: %w", err)
	}
	return p, out.Close()
}

// layerCache is the layer cache under a CacheDir.
func layerCache(cacheDir string) *layer.Cache {
	return &layer.Cache{Dir: filepath.Join(cacheDir, "layers")}
}
