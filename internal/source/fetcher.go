package source

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/kilnbuild/kiln/internal/buildrecord"
)

// Kinds of source, as buildrecord.Source.Kind names them.
const (
	KindWorkspace = "workspace"
	KindUpload    = "upload"
	KindGit       = "git"
	KindModule    = "module"
)

// Limits are the budgets of an uploaded archive. Zero fields take the
// defaults below.
type Limits struct {
	// MaxUpload bounds the archive's bytes as sent (default 256 MiB).
	MaxUpload int64
	// MaxUnpacked bounds the bytes the archive unpacks to, tar headers
	// included (default 1 GiB): the temp disk one upload can take.
	MaxUnpacked int64
	// MaxFiles bounds its entries, directories included (default 20000).
	MaxFiles int
	// MaxRatio bounds unpacked bytes per archive byte read so far, past
	// the first MiB (default 100): a gzip bomb is refused early.
	MaxRatio int64
	// MaxSource bounds the bytes a build's git checkout (with its .git
	// while it is fetched, and the pack as received), module or
	// workspace copy writes into the build's directory (default 1 GiB).
	MaxSource int64
}

// Default limits.
const (
	DefaultMaxUpload   = 256 << 20
	DefaultMaxUnpacked = 1 << 30
	DefaultMaxFiles    = 20000
	DefaultMaxRatio    = 100
	DefaultMaxSource   = 1 << 30
	// ratioSlack is unpacked bytes allowed before MaxRatio applies: tar
	// headers of a few small files compress far better than 100:1.
	ratioSlack = 1 << 20
)

func (l Limits) withDefaults() Limits {
	if l.MaxUpload <= 0 {
		l.MaxUpload = DefaultMaxUpload
	}
	if l.MaxUnpacked <= 0 {
		l.MaxUnpacked = DefaultMaxUnpacked
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = DefaultMaxFiles
	}
	if l.MaxRatio <= 0 {
		l.MaxRatio = DefaultMaxRatio
	}
	if l.MaxSource <= 0 {
		l.MaxSource = DefaultMaxSource
	}
	return l
}

// Fetcher resolves and fetches sources with the server's configuration.
// Its zero value refuses workspaces, cannot store uploads, and uses
// http.DefaultClient and "go" from PATH with an empty environment.
type Fetcher struct {
	// Workspace is the directory workspace sources are relative to; ""
	// turns workspace sources off.
	Workspace string
	// UploadDir keeps the uploaded archives (see upload.go for its tree).
	UploadDir string
	Limits    Limits
	// Go is the go command that downloads modules ("" is "go" on PATH).
	Go string
	// GoEnv is the whole environment of that go command: GOPROXY,
	// GOSUMDB, GONOSUMDB, GOPRIVATE, GOMODCACHE, GOFLAGS=-mod=mod,
	// GOTOOLCHAIN, HOME… Nothing is taken from the process.
	GoEnv []string
	// HTTP is the client for git over http(s) (nil: http.DefaultClient).
	// Its redirects are held to GitAllow too.
	HTTP *http.Client
	// GitAllow are the hosts git sources may name, as path.Match globs
	// over the URL's host ("example.com", "*.example.com", "*" for any;
	// with a ":port" the port must match too). Empty turns git sources
	// off.
	GitAllow []string
}

// Resolved is a source resolved at submission: what records keep. It
// holds nothing else, so one rebuilt from a stored record.Source fetches
// the same content.
type Resolved struct {
	buildrecord.Source
}

// invalidf returns an error wrapping ErrInvalid. Messages name only what
// the client sent, never a server path.
func invalidf(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}

// Resolve checks s and pins what it names: the git commit, the module's
// version and hash, the upload's hash. Bad input is refused with an
// error wrapping ErrInvalid; any other error is the server's or the
// network's.
func (f *Fetcher) Resolve(ctx context.Context, s Spec) (Resolved, error) {
	n := 0
	for _, set := range []bool{s.Workspace != "", s.Upload != "", s.Git != nil, s.Module != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return Resolved{}, invalidf("set exactly one of workspace, upload, git and module (got %d)", n)
	}
	if err := checkSubdir(s); err != nil {
		return Resolved{}, err
	}
	switch {
	case s.Workspace != "":
		return f.resolveWorkspace(s.Workspace)
	case s.Upload != "":
		return f.resolveUpload(s.Upload, s.Subdir)
	case s.Git != nil:
		return f.resolveGit(ctx, *s.Git, s.Subdir)
	default:
		return f.resolveModule(ctx, s.Module)
	}
}

// checkSubdir refuses a subdir that is not a clean relative path, or one
// given where it means nothing.
func checkSubdir(s Spec) error {
	if s.Subdir == "" {
		return nil
	}
	if s.Workspace != "" || s.Module != "" {
		return invalidf("subdir applies to uploads and git only: put it in the workspace path, or leave it out for a module")
	}
	if !localPath(s.Subdir) {
		return invalidf("subdir %q must be a clean relative path inside the tree, like cmd/app", s.Subdir)
	}
	return nil
}

// localPath reports whether p is a clean, relative, slash-separated path
// with no ".." element.
func localPath(p string) bool {
	if p == "" || p == "." || strings.ContainsRune(p, '\\') || !filepath.IsLocal(p) {
		return false
	}
	for _, e := range strings.Split(p, "/") {
		if e == ".." || e == "" {
			return false
		}
	}
	return filepath.ToSlash(filepath.Clean(p)) == p
}

// Fetch copies r's content into dir, a fresh empty directory owned by the
// build, and returns the module root inside it (dir joined with Subdir).
// Content is checked again as it is copied: a workspace or upload that
// changed for the worse since Resolve is refused with ErrInvalid. A fetch
// that fails leaves dir empty.
func (f *Fetcher) Fetch(ctx context.Context, r Resolved, dir string) (root string, err error) {
	defer func() {
		if err != nil {
			emptyDir(dir)
		}
	}()
	switch r.Kind {
	case KindWorkspace:
		err = f.fetchWorkspace(r, dir)
	case KindUpload:
		err = f.fetchUpload(ctx, r, dir)
	case KindGit:
		err = f.fetchGit(ctx, r, dir)
	case KindModule:
		err = f.fetchModule(ctx, r, dir)
	default:
		return "", invalidf("unknown source kind %q: use workspace, upload, git or module", r.Kind)
	}
	if err != nil {
		return "", err
	}
	root = dir
	if r.Subdir != "" {
		if !localPath(r.Subdir) {
			return "", invalidf("subdir %q must be a clean relative path inside the tree", r.Subdir)
		}
		root = filepath.Join(dir, filepath.FromSlash(r.Subdir))
		fi, err := os.Lstat(root)
		if err != nil || !fi.IsDir() {
			return "", invalidf("subdir %q is not a directory of the source: check its spelling", r.Subdir)
		}
	}
	if err := checkTree(dir); err != nil {
		return "", err
	}
	return root, nil
}

// emptyDir removes what dir holds, not dir itself.
func emptyDir(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}

// errNotLocal is the cause of a refused escape, for errors.Is in tests.
var errNotLocal = errors.New("leaves the tree")
