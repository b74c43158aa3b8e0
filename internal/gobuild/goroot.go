package gobuild

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/google/renameio/v2"
)

// GOROOTMemo remembers what `go env GOROOT` answered, so that a build need
// not run a second go command beside its compile (it costs ~50 ms of CPU,
// which on a small machine the compile waits for).
//
// What it guarantees: GOROOT returns what Builder.GOROOT would return now.
// An answer is kept under a key made of everything that decides it, and is
// used only while every part of the key is unchanged:
//   - the go command: its path as PATH finds it, the file it resolves to
//     and that file's size and modification time, and the go.env beside it
//     (the toolchain's defaults, GOTOOLCHAIN among them);
//   - the whole environment the go command gets (Builder.environ: GOROOT,
//     GOTOOLCHAIN, GOPATH, GOMODCACHE, HOME, PATH and the rest);
//   - the directory it runs in, and the bytes of the go.mod and go.work the
//     go command finds from there, whose go and toolchain lines may switch
//     it to another toolchain;
//   - and the answer must still be a directory.
//
// A GOTOOLCHAIN whose value says "path" (the toolchain is looked up on
// PATH by version) is never remembered: go is asked every time.
type GOROOTMemo struct {
	// Dir holds one small file per key; "" remembers nothing.
	Dir string
}

// GOROOT is Builder.GOROOT for dir, remembered. beforeGo, when not nil,
// runs before the go command does (not when the answer is remembered).
func (m GOROOTMemo) GOROOT(ctx context.Context, b *Builder, dir string, beforeGo func()) (string, error) {
	key, ok := "", false
	if m.Dir != "" {
		key, ok = gorootKey(b, dir)
	}
	file := filepath.Join(m.Dir, key)
	if ok {
		if data, err := os.ReadFile(file); err == nil {
			goroot := string(data)
			if st, err := os.Stat(goroot); err == nil && st.IsDir() && filepath.IsAbs(goroot) {
				return goroot, nil
			}
		}
	}
	if beforeGo != nil {
		beforeGo()
	}
	goroot, err := b.GOROOT(ctx, dir)
	if err != nil || !ok || goroot == "" {
		return goroot, err
	}
	// A memo that cannot be written costs the next build a go command only.
	if os.MkdirAll(m.Dir, 0o755) == nil {
		_ = renameio.WriteFile(file, []byte(goroot), 0o644, renameio.WithTempDir(m.Dir))
	}
	return goroot, nil
}

// gorootKey is the hex key of what decides `go env GOROOT` in dir (see
// GOROOTMemo); ok is false when it cannot be had or must not be used.
func gorootKey(b *Builder, dir string) (key string, ok bool) {
	env, err := b.environ(dir, "", nil)
	if err != nil {
		return "", false
	}
	h := sha256.New()
	fmt.Fprintf(h, "kiln goroot memo v1\x00")
	for _, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); k == "GOTOOLCHAIN" && strings.Contains(v, "path") {
			return "", false
		}
		fmt.Fprintf(h, "env %q\x00", kv)
	}
	goCmd := b.Go
	if goCmd == "" {
		goCmd = "go"
	}
	// exec.Command finds the program as LookPath does, with kiln's PATH.
	goPath, err := exec.LookPath(goCmd)
	if err != nil {
		return "", false
	}
	real, err := filepath.EvalSymlinks(goPath)
	if err != nil {
		return "", false
	}
	st, err := os.Stat(real)
	if err != nil {
		return "", false
	}
	fmt.Fprintf(h, "go %q %q %d %d\x00", goPath, real, st.Size(), st.ModTime().UnixNano())
	goEnv, err := os.ReadFile(filepath.Join(filepath.Dir(filepath.Dir(real)), "go.env"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", false
	}
	for _, line := range strings.Split(string(goEnv), "\n") {
		if k, v, _ := strings.Cut(line, "="); strings.TrimSpace(k) == "GOTOOLCHAIN" && strings.Contains(v, "path") {
			return "", false // the toolchain's default is a path mode
		}
	}
	fmt.Fprintf(h, "go.env %d %q\x00", len(goEnv), goEnv)
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", false
	}
	fmt.Fprintf(h, "dir %q\x00", abs)
	for _, name := range []string{"go.mod", "go.work"} {
		if !hashNearest(h, abs, name) {
			return "", false
		}
	}
	return hex.EncodeToString(h.Sum(nil)), true
}

// hashNearest adds the path and bytes of the first file called name in
// dir or above it (as the go command finds go.mod and go.work) to h, or
// that there is none; false when one cannot be read.
func hashNearest(h io.Writer, dir, name string) bool {
	for d := dir; ; d = filepath.Dir(d) {
		p := filepath.Join(d, name)
		data, err := os.ReadFile(p)
		switch {
		case err == nil:
			fmt.Fprintf(h, "%s %q %d %q\x00", name, p, len(data), data)
			return true
		case !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR):
			return false
		}
		if filepath.Dir(d) == d {
			fmt.Fprintf(h, "%s none\x00", name)
			return true
		}
	}
}
