package request

import (
	"io"
	"net/http"
	"path/filepath"
	"time"

	"github.com/kilnbuild/kiln/internal/base"
	"github.com/kilnbuild/kiln/internal/config"
	"github.com/kilnbuild/kiln/internal/gobuild"
	"github.com/kilnbuild/kiln/internal/image"
	"github.com/kilnbuild/kiln/internal/pipeline"
	"github.com/kilnbuild/kiln/internal/publish"
	"github.com/kilnbuild/kiln/internal/sign"
)

// Env is what the caller of Run supplies and a request cannot choose:
// the source and its Go environment, where images and signatures go, the
// key, the cache and the log.
type Env struct {
	Dir string   // the source: packages and relative paths are resolved here
	Env []string // the Go environment (KEY=VALUE); gobuild's rule decides what reaches go build
	// Config is the .ko.yaml that applies; nil loads Dir's, if it has one.
	// A config that asks for -toolexec, cgo or the like is refused as
	// kiln build refuses it, before anything compiles.
	Config *config.Config
	// Confined marks a source that is not the caller's (the build
	// service's): every file the request or the config names must be
	// inside Dir, and bases come from registries (or the tree) only.
	Confined bool

	Publisher  publish.Publisher // where images go
	Repo       string            // the repository images are named under (pipeline.LocalRepo for files)
	Signatures sign.Store        // where signatures go; nil when the destination cannot hold them
	Key        Key               // the signing key, for requests that sign
	// SBOMDir, when set, receives every SBOM the request asks for (ko's
	// --sbom-dir); relative to Dir.
	SBOMDir string

	CacheDir    string       // binaries, layers and remembered public keys between runs; "" for none
	Created     time.Time    // image creation time and layer mtimes; zero means the Unix epoch
	KoData      image.KoData // kodata's allowed symlink root and mtime (KO_DATA_PATH_ALLOWED_ROOT, KO_DATA_DATE_EPOCH)
	Progress    io.Writer    // the build's log; nil discards
	KilnVersion string       // recorded in SBOMs and provenance
	// Caches bounds CacheDir's linked binaries and layers: Run prunes them after
	// each build. The zero value is pipeline's default bound.
	Caches pipeline.CacheBound
	// Builder runs the go command; nil means the real one with Env.
	Builder *gobuild.Builder
	// Transport carries the calls to registries for bases; nil means
	// ggcr's default (see remoteopt.Insecure for --insecure-registry).
	Transport http.RoundTripper
	// Engine reads ko.local/… bases from the local podman or docker; nil
	// refuses them (a build service has no engine of its caller's).
	Engine base.EngineReader
}

// Key is a cosign private key (ECDSA P-256, encrypted).
type Key struct {
	Path     string // the key file; relative to Env.Dir
	Password []byte // its password (COSIGN_PASSWORD)
	// FromConfig lets .ko.yaml's kiln.defaults.key name the key when Path
	// is "" (kiln build). A service leaves it false, so that a source
	// cannot choose a file to sign with.
	FromConfig bool
}

// config is the .ko.yaml that applies to the run.
func (e Env) config() (*config.Config, error) {
	if e.Config != nil {
		return e.Config, nil
	}
	path, err := config.Find("", e.Dir)
	if err != nil || path == "" {
		return &config.Config{}, err
	}
	return config.Load(path)
}

// abs is p relative to dir, unless p is absolute.
func abs(dir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}
