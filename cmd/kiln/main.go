// Command kiln builds minimal, reproducible OCI images from Go packages
// without a container daemon.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
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
	endTrace := startTrace(os.Getenv("KILN_TRACE"), os.Getenv("KILN_CPUPROFILE"))
	code := cli.Run(ctx, cli.Invocation{
		Args: os.Args[1:], Env: os.Environ(), Dir: dir,
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
	})
	endTrace()
	stop()
	os.Exit(code)
}

// startTrace writes a runtime/trace (KILN_TRACE=FILE, read with `go tool
// trace`) and a CPU profile (KILN_CPUPROFILE=FILE, read with `go tool
// pprof`) of kiln's own process, not of the go build it runs: hidden, for
// profiling. It returns what ends them; an empty name starts nothing.
func startTrace(traceFile, cpuFile string) func() {
	var stops []func()
	start := func(file string, begin func(*os.File) error, end func()) {
		if file == "" {
			return
		}
		f, err := os.Create(file)
		if err == nil {
			if err = begin(f); err != nil {
				f.Close()
			}
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "kiln: profiling to %s: %v\n", file, err)
			return
		}
		stops = append(stops, func() { end(); f.Close() })
	}
	start(traceFile, func(f *os.File) error { return trace.Start(f) }, trace.Stop)
	start(cpuFile, func(f *os.File) error { return pprof.StartCPUProfile(f) }, pprof.StopCPUProfile)
	return func() {
		for _, stop := range stops {
			stop()
		}
	}
}
