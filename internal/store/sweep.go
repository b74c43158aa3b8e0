package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// sweepLock keeps gc from deleting a blob between the moment a writer
// finds it (or writes it) and the moment the writer's record of it is in
// place: a protection, a manifest record, a tag. Writers hold it shared
// from their check to their record; gc holds it exclusively from its mark
// to the end of its sweep. So gc either runs wholly before a write, which
// then finds the blob gone and says so, or wholly after, and sees the
// record. No file's age enters into it.
//
// Within a process it is a sync.RWMutex. Between processes it is a lock
// on the first byte of DIR/.lock (an open file description lock, which
// Linux keeps apart from the flock on the same file that serialises
// index.json), taken shared by writers whose records gc sees on disk
// (kiln build's images, a server opening its journal) and exclusively by
// gc. A server's protections live in its memory alone: gc in another
// process refuses to run while a server holds the store's journal (see
// ErrStoreServed), and the server runs gc itself (--gc-interval).
type sweepLock struct {
	mu   sync.RWMutex
	path string // DIR/.lock
}

// sweepWaitHook, when set (by tests), runs when a writer has to wait for
// a gc in progress.
var sweepWaitHook func()

// shared holds the lock for a writer of this process.
func (s *sweepLock) shared() (unlock func()) {
	if !s.mu.TryRLock() {
		if hook := sweepWaitHook; hook != nil {
			hook()
		}
		s.mu.RLock()
	}
	return s.mu.RUnlock
}

// sharedAcrossProcesses is shared, and also against gc in another
// process.
func (s *sweepLock) sharedAcrossProcesses() (unlock func(), err error) {
	unlockMu := s.shared()
	unflock, err := lockFirstByte(s.path, unix.F_RDLCK)
	if err != nil {
		unlockMu()
		return nil, err
	}
	return func() { unflock(); unlockMu() }, nil
}

// exclusive holds the lock for gc, against writers of every process.
func (s *sweepLock) exclusive() (unlock func(), err error) {
	s.mu.Lock()
	unflock, err := lockFirstByte(s.path, unix.F_WRLCK)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	return func() { unflock(); s.mu.Unlock() }, nil
}

// lockFirstByte opens path and locks its first byte, shared (F_RDLCK) or
// exclusively (F_WRLCK), with an open file description lock: held by the
// open file, like a flock, not by the process.
func lockFirstByte(path string, typ int16) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	lk := unix.Flock_t{Type: typ, Whence: io.SeekStart, Start: 0, Len: 1}
	for {
		err = unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLKW, &lk)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s for gc: %w", path, err)
	}
	return func() {
		lk.Type = unix.F_UNLCK
		unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk)
		f.Close()
	}, nil
}

// ErrStoreServed means gc was asked to run in a process other than the
// server that holds the store.
var ErrStoreServed = errors.New("a server holds this store: its gc runs inside it (server --gc-interval); stop the server to collect from here")

// checkNotServed fails with ErrStoreServed if another process holds the
// store's journal, i.e. a server runs on it. Called under the exclusive
// sweep lock, which a server takes shared before it opens the journal, so
// no server can start until gc ends.
func (rs *Repositories) checkNotServed() error {
	if rs.journal != nil {
		return nil // this process is the server
	}
	f, err := os.Open(filepath.Join(rs.layout.dir, "journal"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return ErrStoreServed
		}
		return err
	}
	return syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}

// protections are the blobs this process told a client are there (a
// HEAD, a mount, an upload's commit) and which no manifest may hold yet.
// gc keeps a protected blob until the protection is older than its grace,
// which is how long a push may take from its first answer to its manifest;
// a manifest stored by then holds the blob for good. They live in memory:
// a push does not outlive the process that answered it.
type protections struct {
	mu sync.Mutex
	at map[v1.Hash]time.Time
}

// add protects h from now on; the caller holds the sweep lock shared.
func (p *protections) add(h v1.Hash) {
	now := time.Now()
	p.mu.Lock()
	if p.at == nil {
		p.at = map[v1.Hash]time.Time{}
	}
	p.at[h] = now
	p.mu.Unlock()
}

// prune forgets protections made before cutoff and returns those that
// remain; under the exclusive sweep lock.
func (p *protections) prune(cutoff time.Time) map[v1.Hash]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	held := map[v1.Hash]bool{}
	for h, at := range p.at {
		if at.Before(cutoff) {
			delete(p.at, h)
		} else {
			held[h] = true
		}
	}
	return held
}
