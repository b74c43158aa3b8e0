// Command kiln builds minimal, reproducible OCI images from Go packages
// without a container daemon.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/trace"
	"syscall"

	"github.com/kilnbuild/kiln/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	dir, err := os.Getwd()
	if err != nil {
		fmt.Fprintf(os.Stderr, "kiln: %v\n", err)
		os.Exit(1)
	}
	endTrace := startTrace(os.Getenv("KILN_TRACE"))
	code := cli.Run(ctx, cli.Invocation{
		Args: os.Args[1:], Env: os.Environ(), Dir: dir,
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
	})
	endTrace()
	stop()
	os.Exit(code)
}

// startTrace writes a runtime/trace of kiln's own process to file (hidden,
// for profiling: KILN_TRACE=FILE; `go tool trace FILE` reads it) and
// returns what ends it. It does nothing for an empty file name.
func startTrace(file string) func() {
	if file == "" {
		return func() {}
	}
	f, err := os.Create(file)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kiln: KILN_TRACE: %v\n", err)
		return func() {}
	}
	if err := trace.Start(f); err != nil {
		fmt.Fprintf(os.Stderr, "kiln: KILN_TRACE: %v\n", err)
		f.Close()
		return func() {}
	}
	return func() { trace.Stop(); f.Close() }
}
