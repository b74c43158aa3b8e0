package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/gobuild"
)

// TestGroupRunnerStopsChildren: cancelling a command also stops what it
// started (as go build starts the compiler), not the command alone.
func TestGroupRunnerStopsChildren(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := groupRunner{}.Run(ctx, dir, os.Environ(), "sh", "-c", "sleep 600 & echo $! > "+pidFile+".tmp && mv "+pidFile+".tmp "+pidFile+"; wait")
		done <- err
	}()
	var child int
	for deadline := time.Now().Add(30 * time.Second); child == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the command never started its child")
		}
		b, err := os.ReadFile(pidFile)
		if err == nil {
			child, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
	}
	cancel()
	err := <-done
	var ce *gobuild.CommandError
	if !errors.As(err, &ce) {
		t.Errorf("Run = %v, want a *gobuild.CommandError", err)
	}
	// The child is killed with the group at once; a bounded wait covers
	// the kernel's delivery.
	for deadline := time.Now().Add(10 * time.Second); running(child) && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
	}
	if running(child) {
		syscall.Kill(child, syscall.SIGKILL)
		t.Fatalf("the command's child (pid %d) still runs after the command was cancelled", child)
	}
}

// running reports whether a process runs (a zombie does not).
func running(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || len(s) < i+3 || s[i+2] != 'Z'
}
