package cli

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

func newVersionCommand(inv Invocation) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print kiln's version, the Go it was built with and its source revision",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			info, _ := debug.ReadBuildInfo()
			printVersion(inv.Stdout, info)
			return nil
		},
	}
}

// printVersion prints the version first, alone on its line as ko version
// prints it, then the Go version and the vcs revision, time and state the
// go command stamped (when it did).
func printVersion(w io.Writer, info *debug.BuildInfo) {
	version, goVersion := Version, runtime.Version()
	settings := map[string]string{}
	if info != nil {
		if version == "devel" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			version = info.Main.Version
		}
		goVersion = info.GoVersion
		for _, s := range info.Settings {
			settings[s.Key] = s.Value
		}
	}
	fmt.Fprintln(w, version)
	fmt.Fprintf(w, "go: %s\n", goVersion)
	if rev := settings["vcs.revision"]; rev != "" {
		if settings["vcs.modified"] == "true" {
			rev += " (modified)"
		}
		fmt.Fprintf(w, "revision: %s\n", rev)
	}
	if t := settings["vcs.time"]; t != "" {
		fmt.Fprintf(w, "time: %s\n", t)
	}
}
