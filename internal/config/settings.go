package config

import (
	"slices"
	"strings"
)

// CompileSettings are a build entry's flags, ldflags and env over the
// config's defaults, before templates are expanded: the entry's flags
// (else defaultFlags), its ldflags (else defaultLdflags, else kiln's
// -s -w), and its env (else defaultEnv). b is the zero Build for a
// package without an entry. ko adds no ldflags; kiln strips symbols and
// DWARF unless a debugger needs them: for debug (--debug), or when the
// flags disable optimizations (--disable-optimizations).
func (c *Config) CompileSettings(b Build, debug bool) (flags, ldflags, env []string) {
	flags = c.DefaultFlags
	if len(b.Flags) > 0 {
		flags = b.Flags
	}
	if !debug && !disablesOptimizations(flags) {
		ldflags = []string{"-s", "-w"}
	}
	if len(c.DefaultLdflags) > 0 {
		ldflags = c.DefaultLdflags
	}
	if len(b.Ldflags) > 0 {
		ldflags = b.Ldflags
	}
	env = append([]string{}, c.DefaultEnv...)
	if len(b.Env) > 0 {
		env = append([]string{}, b.Env...) // a build's env replaces defaultEnv, as in ko
	}
	return flags, ldflags, env
}

// disablesOptimizations reports whether flags pass the compiler -N, as
// --disable-optimizations does: -gcflags=[pattern=]args or -gcflags args.
func disablesOptimizations(flags []string) bool {
	for i, f := range flags {
		v, ok := strings.CutPrefix(f, "-gcflags=")
		if !ok && (f == "-gcflags" || f == "--gcflags") && i+1 < len(flags) {
			v, ok = flags[i+1], true
		}
		if !ok {
			v, ok = strings.CutPrefix(f, "--gcflags=")
		}
		if !ok {
			continue
		}
		if pat, args, found := strings.Cut(v, "="); found && !strings.HasPrefix(pat, "-") {
			v = args
		}
		if slices.Contains(strings.Fields(v), "-N") {
			return true
		}
	}
	return false
}
