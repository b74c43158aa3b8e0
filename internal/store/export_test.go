package store

// SetGCHooks sets what runs between gc's mark and sweep, and when a
// writer has to wait for a gc in progress.
func SetGCHooks(afterMark, writerWaits func()) {
	gcAfterMarkHook, sweepWaitHook = afterMark, writerWaits
}
