package service

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/internal/queue"
)

// inSlot runs f as a job of a one-worker queue (slot 0) and waits for it.
func inSlot(t *testing.T, f func(ctx context.Context)) {
	t.Helper()
	q := queue.New(queue.Config{MaxRunning: 1})
	defer q.Shutdown(context.Background())
	done := make(chan struct{})
	if err := q.Submit(queue.Job{ID: "j", Run: func(ctx context.Context) { defer close(done); f(ctx) }}); err != nil {
		t.Fatal(err)
	}
	<-done
}

// TestBuildDir: a queued build gets its slot's directory, at the same
// path each time and emptied of what an earlier build left; a build
// whose slot is held, or that runs outside the queue, gets a fresh one;
// nothing is left once the directory is removed and released.
func TestBuildDir(t *testing.T) {
	parent := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	slot := filepath.Join(parent, "slot-0")
	// What a crashed build may leave: files, and a read-only directory as
	// a module cache extracts it.
	if err := os.MkdirAll(filepath.Join(slot, "ro"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(slot, "ro", "stale.go"), []byte("package stale"), 0o444)
	os.Chmod(filepath.Join(slot, "ro"), 0o555)

	for _, c := range []struct {
		name string
		hold bool // another build holds slot 0
		want string
	}{
		{"stale slot", false, slot},
		{"again", false, slot},
		{"slot held", true, "kiln-build-"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.hold {
				held, release, err := slotDir(parent, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer release()
				defer removeAll(held)
				if _, _, err := slotDir(parent, 0); !errors.Is(err, errSlotBusy) {
					t.Errorf("a second lock of a held slot: %v, want errSlotBusy", err)
				}
			}
			inSlot(t, func(ctx context.Context) {
				dir, release, err := buildDir(ctx, parent, log)
				if err != nil {
					t.Fatal(err)
				}
				defer release()
				defer removeAll(dir)
				if dir != c.want && !strings.HasPrefix(filepath.Base(dir), c.want) {
					t.Errorf("build directory %s, want %s", dir, c.want)
				}
				if ents, _ := os.ReadDir(dir); len(ents) != 0 {
					t.Errorf("build directory %s holds %d entries, want none", dir, len(ents))
				}
			})
		})
	}
	dir, release, err := buildDir(context.Background(), parent, log)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(filepath.Base(dir), "kiln-build-") {
		t.Errorf("outside the queue: build directory %s, want a fresh kiln-build-*", dir)
	}
	removeAll(dir)
	release()
	if ents, _ := os.ReadDir(parent); len(ents) != 0 {
		t.Errorf("left in %s after the builds: %v", parent, ents)
	}
}
