package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

// PodmanStorage is the CONTAINERS_STORAGE_CONF=… setting that gives podman
// a storage of the test's own (vfs, under a temporary directory), so that
// what a test loads touches no other storage.
func PodmanStorage(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "storage.conf")
	text := "[storage]\ndriver = \"vfs\"\ngraphroot = \"" + filepath.Join(dir, "root") + "\"\nrunroot = \"" + filepath.Join(dir, "run") + "\"\n"
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return "CONTAINERS_STORAGE_CONF=" + conf
}
