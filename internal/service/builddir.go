package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"

	"github.com/kilnbuild/kiln/internal/queue"
)

// buildDir makes the empty directory a build fetches its source into.
// A build the queue runs gets its worker slot's directory,
// parent/slot-N: the same path for every build of that slot, so that
// kiln's binary cache (keyed by the package's directory) finds the
// binary of an earlier build of the same package up to date instead of
// linking it again. The slot's lock (parent/slot-N.lock, held until
// release) keeps two builds out of one directory, even two servers on one
// data directory: a build whose slot is taken, or that runs outside the
// queue, gets a fresh temporary directory instead. The caller removes
// the directory before release.
//
//	parent/
//	  slot-0.lock       while slot 0 builds
//	  slot-0/           its source (emptied first: a crash may have left
//	                    an earlier build's files)
//	  kiln-build-1234/  a build that got no slot
func buildDir(ctx context.Context, parent string, log *slog.Logger) (dir string, release func(), err error) {
	if slot, ok := queue.Slot(ctx); ok {
		dir, release, err := slotDir(parent, slot)
		if err == nil {
			return dir, release, nil
		}
		log.Warn("the build slot's directory is unusable: building in a fresh one, without reusing binaries", "slot", slot, "error", err)
	}
	dir, err = os.MkdirTemp(parent, "kiln-build-")
	return dir, func() {}, err
}

// errSlotBusy: another build (of this server or another on the same
// directory) holds the slot's lock.
var errSlotBusy = errors.New("the slot is in use")

// slotDir takes slot's lock and empties its directory. The lock file is
// removed on release (nothing is left between builds); a locker that
// opened it before the removal finds it no longer at its path and backs
// off, so the lock is held by one at a time.
func slotDir(parent string, slot int) (string, func(), error) {
	dir := filepath.Join(parent, fmt.Sprintf("slot-%d", slot))
	lockPath := dir + ".lock"
	lock, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return "", nil, err
	}
	fail := func(err error) (string, func(), error) {
		lock.Close()
		return "", nil, err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			err = errSlotBusy
		}
		return fail(err)
	}
	held, err := lock.Stat()
	if err != nil {
		return fail(err)
	}
	if now, err := os.Lstat(lockPath); err != nil || !os.SameFile(held, now) {
		return fail(errSlotBusy) // released and removed since it was opened
	}
	if err := removeAll(dir); err != nil {
		return fail(fmt.Errorf("emptying the slot: %w", err))
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fail(err)
	}
	return dir, func() {
		os.Remove(lockPath)
		lock.Close()
	}, nil
}
