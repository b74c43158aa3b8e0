package server

import (
	"bytes"
	"context"
	"os/exec"
	"runtime"
	"strings"
	"syscall"

	"github.com/kilnbuild/kiln/internal/gobuild"
)

// groupRunner runs the go command in a process group of its own and, when
// the build's context ends (cancel, timeout, shutdown), kills the whole
// group: the compiler and linker the go command started stop with it.
// (exec.CommandContext kills the go command alone, and its compiler then
// runs on, for minutes on a big package, after the build was cancelled.)
// If the server itself dies, the go command is killed too (Pdeathsig); a
// compile it had started finishes its one package and exits.
//
// Pdeathsig fires when the thread that started the child ends, not the
// process, and goroutines that lock their thread and return end it (vcs's
// idle git runs, signing). So the go command is started and waited for on
// a thread locked to this goroutine: no other goroutine can end it while
// the command runs.
type groupRunner struct{}

var _ gobuild.Runner = groupRunner{}

func (groupRunner) Run(ctx context.Context, dir string, env []string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), &gobuild.CommandError{Err: err, Output: strings.TrimSpace(stderr.String())}
	}
	return stdout.Bytes(), nil
}
