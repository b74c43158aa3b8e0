package cli

import (
	"slices"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/internal/testutil"
)

// TestKoBuildDefaults: KO_DEFAULTENV, KO_DEFAULTFLAGS and KO_DEFAULTLDFLAGS
// replace .ko.yaml's defaultEnv, defaultFlags and defaultLdflags, split at
// white space as ko's configuration reader splits them; empty is unset.
func TestKoBuildDefaults(t *testing.T) {
	const yaml = "defaultEnv: [A=1]\ndefaultFlags: [-tags=yaml]\ndefaultLdflags: [-X main.v=yaml]\n"
	for _, tc := range []struct {
		name               string
		config             string // .ko.yaml, "" for none
		env                []string
		wantEnv, wantFlags []string
		wantLdflags        []string
		err                string
	}{
		{name: "none", config: yaml, wantEnv: []string{"A=1"}, wantFlags: []string{"-tags=yaml"}, wantLdflags: []string{"-X main.v=yaml"}},
		{name: "no config", env: []string{"KO_DEFAULTENV=B=2 C=3", "KO_DEFAULTFLAGS=-tags netgo", "KO_DEFAULTLDFLAGS=-s -w -X main.v=1"},
			wantEnv: []string{"B=2", "C=3"}, wantFlags: []string{"-tags", "netgo"}, wantLdflags: []string{"-s", "-w", "-X", "main.v=1"}},
		{name: "over the config", config: yaml, env: []string{"KO_DEFAULTENV=B=2", "KO_DEFAULTFLAGS=-v", "KO_DEFAULTLDFLAGS=-s"},
			wantEnv: []string{"B=2"}, wantFlags: []string{"-v"}, wantLdflags: []string{"-s"}},
		{name: "one of them", config: yaml, env: []string{"KO_DEFAULTLDFLAGS=  -s\t-w "},
			wantEnv: []string{"A=1"}, wantFlags: []string{"-tags=yaml"}, wantLdflags: []string{"-s", "-w"}},
		{name: "empty is unset", config: yaml, env: []string{"KO_DEFAULTENV=", "KO_DEFAULTFLAGS= ", "KO_DEFAULTLDFLAGS="},
			wantEnv: []string{"A=1"}, wantFlags: []string{"-tags=yaml"}, wantLdflags: []string{"-X main.v=yaml"}},
		{name: "the last setting wins", env: []string{"KO_DEFAULTFLAGS=-a", "KO_DEFAULTFLAGS=-b"}, wantFlags: []string{"-b"}},

		{name: "env entry without =", env: []string{"KO_DEFAULTENV=A=1 B"}, err: `KO_DEFAULTENV: "B" is not NAME=VALUE`},
		{name: "env entry without a name", env: []string{"KO_DEFAULTENV==1"}, err: `KO_DEFAULTENV: "=1" is not NAME=VALUE`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.config != "" {
				testutil.WriteFiles(t, dir, map[string]string{".ko.yaml": tc.config})
			}
			cfg, err := loadConfig(Invocation{Dir: dir, Env: tc.env})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("loadConfig: %v; want an error containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(cfg.DefaultEnv, tc.wantEnv) || !slices.Equal(cfg.DefaultFlags, tc.wantFlags) || !slices.Equal(cfg.DefaultLdflags, tc.wantLdflags) {
				t.Errorf("env %q flags %q ldflags %q; want %q %q %q", cfg.DefaultEnv, cfg.DefaultFlags, cfg.DefaultLdflags, tc.wantEnv, tc.wantFlags, tc.wantLdflags)
			}
		})
	}
}
