package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// GoEnv is the test process's environment with a Go of its own under
// home: HOME, GOPATH and GOCACHE there, the module cache writable (so that
// t.TempDir can remove it) and no module proxy. Builds start cold; tests
// that compare caches pass different homes.
func GoEnv(t testing.TB, home string) []string {
	t.Helper()
	return append(os.Environ(),
		"HOME="+home,
		"GOPATH="+filepath.Join(home, "go"),
		"GOCACHE="+filepath.Join(home, "cache"),
		"GOFLAGS=-modcacherw",
		"GOPROXY=off",
	)
}

// hostGo is what the host's go command answers, asked once.
var hostGo struct {
	once                    sync.Once
	gocache, gopath, goroot string
}

func askHostGo(t testing.TB) {
	t.Helper()
	hostGo.once.Do(func() {
		out, err := exec.Command("go", "env", "GOCACHE", "GOPATH", "GOROOT").Output()
		if err == nil {
			if f := strings.Fields(string(out)); len(f) == 3 {
				hostGo.gocache, hostGo.gopath, hostGo.goroot = f[0], f[1], f[2]
			}
		}
	})
	if hostGo.gocache == "" {
		t.Fatal("go env GOCACHE GOPATH GOROOT: no answer (is go on PATH?)")
	}
}

// GOROOT is the host go command's GOROOT.
func GOROOT(t testing.TB) string {
	t.Helper()
	askHostGo(t)
	return hostGo.goroot
}

// HermeticGoEnv is the test process's environment without any Go, cgo, C
// or XDG setting, with a private HOME (so that no go env file is found) but
// the host's build cache and GOPATH, so that building a tiny package stays
// fast. Use it where a test sets the Go variables itself.
func HermeticGoEnv(t testing.TB) []string {
	t.Helper()
	askHostGo(t)
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "GO") || strings.HasPrefix(k, "CGO") || strings.HasPrefix(k, "XDG_") || k == "HOME" || k == "CC" || k == "CXX" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HOME="+t.TempDir(), "GOCACHE="+hostGo.gocache, "GOPATH="+hostGo.gopath, "GOPROXY=off", "GOTOOLCHAIN=local")
}
