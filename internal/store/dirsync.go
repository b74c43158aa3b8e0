package store

import "sync"

// dirSyncer makes renames into one directory durable with as few fsyncs as
// it can: writers that wait at the same time share the next fsync that
// starts after their rename (a group commit).
type dirSyncer struct {
	dir                string
	syncFn             func() error // what to run instead of fsyncing dir
	noSync             bool
	mu                 sync.Mutex
	cond               *sync.Cond
	running            bool
	started, completed uint64
	err                error // of the last completed fsync
}

// syncer returns the syncer of dir, one per Layout and directory.
func (l *Layout) syncer(dir string) *dirSyncer {
	if s, ok := l.syncers.Load(dir); ok {
		return s.(*dirSyncer)
	}
	s := &dirSyncer{dir: dir, noSync: l.noSync}
	s.init()
	actual, _ := l.syncers.LoadOrStore(dir, s)
	return actual.(*dirSyncer)
}

func (s *dirSyncer) init() { s.cond = sync.NewCond(&s.mu) }

// Sync returns once an fsync of the directory that started after the call
// has completed.
func (s *dirSyncer) Sync() error {
	if s.noSync {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	target := s.started + 1 // an fsync running now may have missed our rename
	for s.completed < target {
		if s.running {
			s.cond.Wait()
			continue
		}
		s.running = true
		s.started++
		gen := s.started
		s.mu.Unlock()
		var err error
		if s.syncFn != nil {
			err = s.syncFn()
		} else {
			err = fsyncDir(s.dir)
		}
		s.mu.Lock()
		s.running = false
		s.completed, s.err = gen, err
		s.cond.Broadcast()
	}
	return s.err
}
