package source

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/kilnbuild/kiln/internal/oneline"
	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/dirhash"
)

// Module sources are downloaded by the server's own go command (`go mod
// download -json`), which verifies them against the checksum database
// as configured by GoEnv (GOSUMDB, GONOSUMDB, GOPRIVATE) and keeps them
// in its module cache. Fetch copies the cached directory and checks the
// copy's h1: hash against the one recorded at Resolve.

// download is what `go mod download -json` prints for one module.
type download struct {
	Path, Version, Error, Dir, Sum, Zip string
}

// parseModule splits and checks path@version; the version must be exact.
func parseModule(s string) (string, string, error) {
	i := strings.LastIndexByte(s, '@')
	if i <= 0 {
		return "", "", invalidf("module %q must be path@version, like example.com/app@v1.2.3", s)
	}
	path, version := s[:i], s[i+1:]
	if err := module.Check(path, version); err != nil {
		return "", "", invalidf("module %q: %v: give a module path and an exact version like v1.2.3", s, oneline.First(err.Error()))
	}
	return path, version, nil
}

func (f *Fetcher) download(ctx context.Context, path, version string) (download, error) {
	tmp, err := os.MkdirTemp("", "kiln-mod-")
	if err != nil {
		return download{}, err
	}
	defer os.RemoveAll(tmp)
	goBin := f.Go
	if goBin == "" {
		goBin = "go"
	}
	cmd := exec.CommandContext(ctx, goBin, "mod", "download", "-json", path+"@"+version)
	cmd.Dir = tmp // outside any module: nothing is added to a go.mod
	cmd.Env = append(append([]string{}, f.GoEnv...), "GOWORK=off")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var d download
	if err := json.Unmarshal(stdout.Bytes(), &d); err != nil {
		if runErr == nil {
			runErr = err
		}
		return download{}, fmt.Errorf("downloading module %s@%s: %w: %s", path, version, runErr, oneline.First(stderr.String()))
	}
	if d.Error != "" || runErr != nil {
		return download{}, classifyDownload(path, version, d.Error, runErr)
	}
	if d.Dir == "" || d.Sum == "" {
		return download{}, fmt.Errorf("downloading module %s@%s: the go command gave no directory or hash", path, version)
	}
	return d, nil
}

// classifyDownload turns the go command's error into ErrInvalid when the
// module is the client's fault, with a message of our own (the go
// command's names server paths).
func classifyDownload(path, version, msg string, runErr error) error {
	m := strings.ToLower(msg)
	switch {
	case strings.Contains(m, "checksum mismatch") || strings.Contains(m, "security error"):
		return invalidf("module %s@%s does not match the checksum database: its content was changed after publication; do not build it", path, version)
	case strings.Contains(m, "404 not found") || strings.Contains(m, "410 gone") ||
		strings.Contains(m, "unknown revision") || strings.Contains(m, "invalid version") ||
		strings.Contains(m, "not found") || strings.Contains(m, "no matching versions"):
		return invalidf("module %s@%s was not found through GOPROXY: check the path and the version", path, version)
	}
	if msg == "" && runErr != nil {
		msg = runErr.Error()
	}
	return fmt.Errorf("downloading module %s@%s: %s", path, version, oneline.First(msg))
}

func (f *Fetcher) resolveModule(ctx context.Context, s string) (Resolved, error) {
	path, version, err := parseModule(s)
	if err != nil {
		return Resolved{}, err
	}
	d, err := f.download(ctx, path, version)
	if err != nil {
		return Resolved{}, err
	}
	// The go command bounds a module zip itself (500 MiB); a smaller
	// --max-source is checked here, and again on the copy.
	if fi, err := os.Stat(d.Zip); err == nil && fi.Size() > f.Limits.withDefaults().MaxSource {
		return Resolved{}, invalidf("module %s@%s is larger than the server's limit of %d bytes", path, version, f.Limits.withDefaults().MaxSource)
	}
	r := Resolved{}
	r.Kind, r.Ref, r.Revision, r.Hash = KindModule, s, d.Version, d.Sum
	return r, nil
}

func (f *Fetcher) fetchModule(ctx context.Context, r Resolved, dir string) error {
	path, _, err := parseModule(r.Ref)
	if err != nil {
		return err
	}
	if r.Hash == "" {
		return errors.New("fetching a module: the resolved source has no hash: resolve it again")
	}
	d, err := f.download(ctx, path, r.Revision)
	if err != nil {
		return err
	}
	if err := copyTree(d.Dir, dir, f.Limits.withDefaults().MaxFiles, f.newBudget()); err != nil {
		return fmt.Errorf("copying module %s@%s: %w", path, r.Revision, err)
	}
	got, err := dirhash.HashDir(dir, path+"@"+r.Revision, dirhash.Hash1)
	if err != nil {
		return fmt.Errorf("hashing module %s@%s: %w", path, r.Revision, err)
	}
	if got != r.Hash {
		return fmt.Errorf("module %s@%s: the copy's hash %s is not the recorded %s: the module cache was changed; clean it", path, r.Revision, got, r.Hash)
	}
	return nil
}
