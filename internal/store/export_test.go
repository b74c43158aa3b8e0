package store

// SetJournalDirect lets tests take the journal's fdatasync path, which file
// systems without direct I/O get.
func SetJournalDirect(on bool) { journalDirect = on }
