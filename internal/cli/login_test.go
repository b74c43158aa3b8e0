package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// runLogin runs kiln login with stdin and env, and returns the exit code
// and stderr.
func runLogin(t *testing.T, env []string, stdin string, args ...string) (int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(context.Background(), Invocation{Args: append([]string{"login"}, args...), Env: env, Dir: t.TempDir(),
		Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb})
	if out.Len() != 0 {
		t.Errorf("login printed on stdout: %q", out.String())
	}
	return code, errb.String()
}

// dockerAuths reads the auths of the docker config in dir.
func dockerAuths(t *testing.T, dir string) map[string]map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cf struct {
		Auths map[string]map[string]string `json:"auths"`
	}
	if err := json.Unmarshal(data, &cf); err != nil {
		t.Fatal(err)
	}
	return cf.Auths
}

func TestLoginBadInput(t *testing.T) {
	malformed := t.TempDir()
	if err := os.WriteFile(filepath.Join(malformed, "config.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, stdin string
		env         func(dir string) []string
		args        []string
		want        string
	}{
		{"no registry", "pw", nil, []string{"-u", "ci", "--password-stdin"}, "accepts 1 arg"},
		{"two registries", "pw", nil, []string{"a.test", "b.test", "-u", "ci", "--password-stdin"}, "accepts 1 arg"},
		{"a URL, not a registry", "pw", nil, []string{"http://reg.test", "-u", "ci", "--password-stdin"}, "not a registry"},
		{"a repository, not a registry", "pw", nil, []string{"reg.test/team/app", "-u", "ci", "--password-stdin"}, "not a registry"},
		{"user@host", "pw", nil, []string{"ci@reg.test", "-u", "ci", "--password-stdin"}, "not a registry"},
		{"spaces", "pw", nil, []string{"reg test", "-u", "ci", "--password-stdin"}, "not a registry"},
		{"no password", "", nil, []string{"reg.test", "-u", "ci"}, "no password"},
		{"empty stdin", "", nil, []string{"reg.test", "-u", "ci", "--password-stdin"}, "no password"},
		{"only a newline on stdin", "\n", nil, []string{"reg.test", "-u", "ci", "--password-stdin"}, "no password"},
		{"empty -p", "", nil, []string{"reg.test", "-u", "ci", "-p", ""}, "no password"},
		{"no user", "pw", nil, []string{"reg.test", "--password-stdin"}, "no user name"},
		{"both -p and --password-stdin", "pw", nil, []string{"reg.test", "-u", "ci", "-p", "pw", "--password-stdin"}, "both given"},
		{"a password over 64 KiB", strings.Repeat("x", 64<<10+1), nil, []string{"reg.test", "-u", "ci", "--password-stdin"}, "over 64 KiB"},
		{"no DOCKER_CONFIG and no HOME", "pw", func(string) []string { return []string{"PATH=/bin"} }, []string{"reg.test", "-u", "ci", "--password-stdin"}, "neither DOCKER_CONFIG nor HOME"},
		{"a malformed docker config is left alone", "pw", func(string) []string { return []string{"DOCKER_CONFIG=" + malformed} }, []string{"reg.test", "-u", "ci", "--password-stdin"}, "fix or move it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			env := []string{"DOCKER_CONFIG=" + dir}
			if tc.env != nil {
				env = tc.env(dir)
			}
			code, stderr := runLogin(t, env, tc.stdin, tc.args...)
			if code != 1 || !strings.Contains(stderr, tc.want) || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "kiln: ") {
				t.Errorf("exit %d, stderr %q; want 1 and one line with %q", code, stderr, tc.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "config.json")); !os.IsNotExist(err) {
				t.Errorf("a refused login wrote the docker config (%v)", err)
			}
		})
	}
	if data, _ := os.ReadFile(filepath.Join(malformed, "config.json")); string(data) != "{not json" {
		t.Errorf("the malformed docker config was rewritten: %q", data)
	}
}

// kiln login writes the docker config as ko login does, keeps what else
// it holds, and the keychain kiln pushes with finds the credentials there.
func TestLoginWritesDockerConfig(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"auths":{"other.test":{"auth":"b3RoZXI6cHc="}},"detachKeys":"ctrl-x"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"DOCKER_CONFIG=" + dir, "HOME=/nonexistent"}
	code, stderr := runLogin(t, env, "s3cret\r\n", "reg.test:5000", "-u", "ci", "--password-stdin")
	if code != 0 || strings.Contains(stderr, "WARNING") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	auths := dockerAuths(t, dir)
	if got := auths["reg.test:5000"]["auth"]; got != base64.StdEncoding.EncodeToString([]byte("ci:s3cret")) {
		t.Errorf("auth for reg.test:5000 = %q", got)
	}
	if auths["other.test"]["auth"] == "" {
		t.Error("the other registry's credentials were dropped")
	}
	data, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	if !strings.Contains(string(data), "ctrl-x") {
		t.Errorf("the config's other settings were dropped: %s", data)
	}
	if st, err := os.Stat(filepath.Join(dir, "config.json")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("config.json mode = %v, %v; want 0600", st.Mode(), err)
	}

	// -p works, with a warning; a second login replaces the first.
	code, stderr = runLogin(t, env, "", "reg.test:5000", "-u", "ci", "-p", "newer")
	if code != 0 || !strings.Contains(stderr, "WARNING! Using --password via the CLI is insecure") {
		t.Fatalf("-p: exit %d: %q", code, stderr)
	}
	if got := dockerAuths(t, dir)["reg.test:5000"]["auth"]; got != base64.StdEncoding.EncodeToString([]byte("ci:newer")) {
		t.Errorf("auth after a second login = %q", got)
	}

	// The keychain kiln uses (which reads DOCKER_CONFIG from the process)
	// finds them.
	t.Setenv("DOCKER_CONFIG", dir)
	reg, _ := name.NewRegistry("reg.test:5000")
	auth, err := authn.DefaultKeychain.Resolve(reg)
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err := auth.Authorization(); err != nil || cfg.Username != "ci" || cfg.Password != "newer" {
		t.Errorf("keychain found %+v, %v", cfg, err)
	}

	// The docker CLI's default registry is stored under its legacy key.
	code, _ = runLogin(t, env, "pw", name.DefaultRegistry, "-u", "ci", "--password-stdin")
	if _, ok := dockerAuths(t, dir)[authn.DefaultAuthKey]; code != 0 || !ok {
		t.Errorf("default registry: exit %d, auths %v", code, dockerAuths(t, dir))
	}
}
