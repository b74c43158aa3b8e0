package store

// SetJournalDirect lets tests take the journal's fdatasync path, which file
// systems without direct I/O get.
func SetJournalDirect(on bool) { journalDirect = on }

// SetGCHooks sets what runs between gc's mark and sweep, and when a
// writer has to wait for a gc in progress.
func SetGCHooks(afterMark, writerWaits func()) {
	gcAfterMarkHook, sweepWaitHook = afterMark, writerWaits
}
