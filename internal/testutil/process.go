package testutil

import (
	"net/http"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"
)

// Process is a server program that a test runs as a process of its own,
// its output appended to a log file. StartProcess starts it; the test
// ends it with Kill or Stop, and may then start the same program again.
type Process struct {
	Cmd  *exec.Cmd
	done chan struct{}
}

// StartProcess starts cmd with its output appended to the file log and
// returns once GET ready answers with one of the statuses ok. The test
// fails, showing the log's tail, when the program exits first or does not
// answer so within 30 s (then it is killed). Ending a process that started
// is the caller's (Kill, Stop).
func StartProcess(t testing.TB, cmd *exec.Cmd, log, ready string, ok ...int) *Process {
	t.Helper()
	logf, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatal(err)
	}
	p := &Process{Cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); logf.Close(); close(p.done) }()
	client := &http.Client{Timeout: 2 * time.Second}
	last := "no answer"
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-p.done:
			t.Fatalf("%s exited before it was ready (%v):\n%s", cmd.Path, cmd.ProcessState, LogTail(log, 6000))
		default:
		}
		resp, err := client.Get(ready)
		if err != nil {
			last = err.Error()
			continue
		}
		resp.Body.Close()
		if slices.Contains(ok, resp.StatusCode) {
			return p
		}
		last = resp.Status
	}
	p.Kill()
	t.Fatalf("%s never answered GET %s with %v (last: %s):\n%s", cmd.Path, ready, ok, last, LogTail(log, 6000))
	return nil
}

// Kill ends the process with SIGKILL, so that no shutdown code runs, and
// waits for it. A nil *Process (one that never started) is left alone.
func (p *Process) Kill() {
	if p == nil {
		return
	}
	p.Cmd.Process.Kill()
	<-p.done
}

// Stop ends the process with SIGTERM, waits for it, and reports whether
// it exited with status 0.
func (p *Process) Stop() bool {
	p.Cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
	return p.Cmd.ProcessState.Success()
}

// LogTail is the last max bytes of the file at path, "" when it cannot be
// read.
func LogTail(path string, max int) string {
	b, _ := os.ReadFile(path)
	if len(b) > max {
		return "…" + string(b[len(b)-max:])
	}
	return string(b)
}
