package e2e

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/internal/testutil"
)

// TestKilnVerifyRebuildDebug: kiln verify --rebuild reproduces an image
// built with --debug (Delve's layer and entrypoint, symbols kept) and one
// built with --disable-optimizations, from what their provenance records.
func TestKilnVerifyRebuildDebug(t *testing.T) {
	s := newSigning(t, nil)
	testutil.RequireTool(t, "git")
	// Delve comes from the machine's module cache or proxy, as in TestDebugImage.
	s.env = append(s.env, "GOPROXY="+goEnv(t, "GOPROXY"))
	testutil.WriteFiles(t, s.dir, map[string]string{".gitignore": "cosign.key\ncosign.pub\n"})
	git(t, s.dir, "init", "-q")
	git(t, s.dir, "add", "-A")
	git(t, s.dir, "commit", "-q", "-m", "one")
	for _, flag := range []string{"--debug", "--disable-optimizations"} {
		t.Run(flag, func(t *testing.T) {
			ref := s.buildSigned(t, "rebuild/"+strings.TrimLeft(flag, "-"), flag)
			code, stdout, stderr := s.kilnVerify(t, ref, "--rebuild")
			if code != 0 {
				t.Fatalf("kiln verify --rebuild of a %s build: exit %d\n%s\n%s", flag, code, stdout, stderr)
			}
			wantLine(t, stdout, "rebuild:", "reproduces "+digestOf(t, ref).String())
		})
	}
}

// goEnv is the machine's go env value for key.
func goEnv(t *testing.T, key string) string {
	t.Helper()
	if v := os.Getenv(key); v != "" {
		return v
	}
	out, err := exec.Command("go", "env", key).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}
