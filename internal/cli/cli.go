package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// Version is set at link time (-X github.com/kilnbuild/kiln/internal/cli.Version=…).
var Version = "devel"

// Invocation is everything a run of kiln reads from its process.
type Invocation struct {
	Args   []string // without the program name
	Env    []string // KEY=VALUE, as os.Environ
	Dir    string   // working directory
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

func (inv Invocation) getenv(key string) string {
	for i := len(inv.Env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(inv.Env[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}

// Run executes kiln and returns the process exit code. Errors are printed
// to stderr as one line prefixed with "kiln: ".
func Run(ctx context.Context, inv Invocation) int {
	root := &cobra.Command{
		Use:           "kiln",
		Short:         "Build minimal, reproducible OCI images from Go packages without a container daemon",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
	}
	root.SetArgs(inv.Args)
	root.SetOut(inv.Stdout)
	root.SetErr(inv.Stderr)
	if inv.Stdin != nil {
		root.SetIn(inv.Stdin)
	}
	root.AddCommand(newBuildCommand(inv), newBaseCommand(inv), newKeygenCommand(inv), newSignCommand(inv), newVerifyCommand(inv), newCompareCommand(inv), newGCCommand(inv), newResolveCommand(inv), newApplyCommand(inv, "apply"), newApplyCommand(inv, "create"), newDeleteCommand(inv), newRunCommand(inv), newVersionCommand(inv), newLoginCommand(inv))
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(inv.Stderr, "kiln: %v\n", err)
		return 1
	}
	return 0
}
