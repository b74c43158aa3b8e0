package config

// CompileSettings are a build entry's flags, ldflags and env over the
// config's defaults, before templates are expanded: the entry's flags
// (else defaultFlags), its ldflags (else defaultLdflags, else -s -w
// unless symbols are kept for a debugger), and defaultEnv followed by its
// env. b is the zero Build for a package without an entry.
func (c *Config) CompileSettings(b Build, keepSymbols bool) (flags, ldflags, env []string) {
	flags = c.DefaultFlags
	if len(b.Flags) > 0 {
		flags = b.Flags
	}
	if !keepSymbols {
		ldflags = []string{"-s", "-w"} // a debugger needs the symbols and DWARF these drop
	}
	if len(c.DefaultLdflags) > 0 {
		ldflags = c.DefaultLdflags
	}
	if len(b.Ldflags) > 0 {
		ldflags = b.Ldflags
	}
	env = append(append([]string{}, c.DefaultEnv...), b.Env...)
	return flags, ldflags, env
}
