package config

import (
	"slices"
	"testing"
)

// TestCompileSettings: a build entry's flags, ldflags and env each replace
// the defaults, as in ko; kiln's own -s -w only when nothing else is given
// and no debugger needs the symbols.
func TestCompileSettings(t *testing.T) {
	c := &Config{DefaultFlags: []string{"-tags=netgo"}, DefaultLdflags: nil, DefaultEnv: []string{"A=1", "B=2"}}
	withLd := &Config{DefaultLdflags: []string{"-X main.v=1"}, DefaultEnv: []string{"A=1"}}
	for _, tc := range []struct {
		name                string
		c                   *Config
		b                   Build
		debug               bool
		flags, ldflags, env []string
	}{
		{"defaults", c, Build{}, false, []string{"-tags=netgo"}, []string{"-s", "-w"}, []string{"A=1", "B=2"}},
		{"entry replaces", c, Build{Flags: []string{"-v"}, Ldflags: []string{"-X a.b=c"}, Env: []string{"C=3"}}, false, []string{"-v"}, []string{"-X a.b=c"}, []string{"C=3"}},
		{"debug keeps symbols", c, Build{}, true, []string{"-tags=netgo"}, nil, []string{"A=1", "B=2"}},
		{"-N keeps symbols", c, Build{Flags: []string{"-gcflags=all=-N -l"}}, false, []string{"-gcflags=all=-N -l"}, nil, []string{"A=1", "B=2"}},
		{"-gcflags ARGS form", c, Build{Flags: []string{"-gcflags", "-N -l"}}, false, []string{"-gcflags", "-N -l"}, nil, []string{"A=1", "B=2"}},
		{"default ldflags", withLd, Build{}, true, nil, []string{"-X main.v=1"}, []string{"A=1"}},
	} {
		flags, ldflags, env := tc.c.CompileSettings(tc.b, tc.debug)
		if !slices.Equal(flags, tc.flags) || !slices.Equal(ldflags, tc.ldflags) || !slices.Equal(env, tc.env) {
			t.Errorf("%s: flags %q ldflags %q env %q; want %q %q %q", tc.name, flags, ldflags, env, tc.flags, tc.ldflags, tc.env)
		}
	}
}
