package store

import (
	"sync/atomic"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Index is index.json as the store's writes read it (the empty index when
// there is none), for tests only: code outside the store reads a layout
// through Lookup or checked.LayoutIndex.
func (l *Layout) Index() (*v1.IndexManifest, error) { return l.readIndex() }

// SetGCHooks sets what runs between gc's mark and sweep, and when a
// writer has to wait for a gc in progress.
func SetGCHooks(afterMark, writerWaits func()) {
	gcAfterMarkHook, sweepWaitHook = afterMark, writerWaits
}

// CountSyncFS counts the syncs of the whole file system from now until
// the test ends; they still run.
func CountSyncFS(t interface{ Cleanup(func()) }) *atomic.Int64 {
	var n atomic.Int64
	prev := syncFS
	syncFS = func(fd int) error { n.Add(1); return prev(fd) }
	t.Cleanup(func() { syncFS = prev })
	return &n
}
