package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/internal/store"
	"github.com/kilnbuild/kiln/internal/testutil"
)

func TestGC(t *testing.T) {
	env := testEnv(t)
	code, stdout, stderr := kiln(t, t.TempDir(), env, "gc", "--grace", "0s")
	if code != 0 || !strings.HasPrefix(stdout, "removed 0 blobs") {
		t.Fatalf("gc on an empty store: exit %d\n%s%s", code, stdout, stderr)
	}
	// Beside a server (which holds the store's journal), gc refuses.
	served := filepath.Join(t.TempDir(), "store")
	st, err := store.Open(served)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Repositories().OpenJournal(); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = kiln(t, t.TempDir(), env, "gc", "--store", served)
	st.Repositories().CloseJournal()
	if code == 0 || !strings.Contains(stderr, "--gc-interval") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Fatalf("gc beside a server: exit %d, stderr %q", code, stderr)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"negative grace", []string{"gc", "--grace", "-1h"}, "negative"},
		{"not a duration", []string{"gc", "--grace", "soon"}, "invalid argument"},
		{"an argument", []string{"gc", "extra"}, "unknown command"},
		{"store is a file", []string{"gc", "--store", filepath.Join("go.mod", "x")}, "store"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			testutil.WriteFiles(t, dir, map[string]string{"go.mod": "module x\n"})
			code, _, stderr := kiln(t, dir, env, tc.args...)
			if code == 0 || !strings.Contains(stderr, tc.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Fatalf("exit %d, stderr %q, want one line containing %q", code, stderr, tc.want)
			}
		})
	}
}
