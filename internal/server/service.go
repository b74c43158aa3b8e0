package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kilnbuild/kiln/internal/buildrecord"
	"github.com/kilnbuild/kiln/internal/records"
	"github.com/kilnbuild/kiln/internal/registry"
	"github.com/kilnbuild/kiln/internal/request"
	"github.com/kilnbuild/kiln/internal/service"
	"github.com/kilnbuild/kiln/internal/source"
)

// buildFlags configure the build service (everything but --registry-only).
type buildFlags struct {
	workspace       string
	maxUpload       int64
	maxSource       int64
	gitAllow        []string
	maxFiles        int
	maxBuilds       int
	maxQueue        int
	buildTimeout    time.Duration
	shutdownGrace   time.Duration
	maxLog          int64
	signingKey      string
	keyPasswordFile string
	apiTokenFile    string
	publicRead      bool
	registryName    string
	goCache         string
}

func (b *buildFlags) register(fs *flag.FlagSet) {
	b.maxUpload, b.maxLog = service.DefaultMaxUpload, records.DefaultMaxLogBytes
	fs.StringVar(&b.workspace, "workspace", "", "directory whose subdirectories builds may name as their source (off when empty)")
	sizeVar(fs, &b.maxUpload, "max-upload", "largest uploaded source archive")
	b.maxSource = source.DefaultMaxSource
	sizeVar(fs, &b.maxSource, "max-source", "most bytes a build's source may take on disk: a git checkout, a module, a workspace copy or an unpacked upload")
	fs.Func("git-allow", "host glob git sources may name (repeat it; e.g. git.example.com, *.example.com, 127.0.0.1:3000, * for any); without it git sources are off", func(v string) error {
		b.gitAllow = append(b.gitAllow, v)
		return source.CheckGitAllow([]string{v})
	})
	fs.IntVar(&b.maxFiles, "max-files", 20000, "most entries an uploaded source archive may hold")
	fs.IntVar(&b.maxBuilds, "max-builds", max(1, runtime.NumCPU()/2), "builds running at once")
	fs.IntVar(&b.maxQueue, "max-queue", 100, "builds waiting; more are refused with 429")
	fs.DurationVar(&b.buildTimeout, "build-timeout", service.DefaultBuildTimeout, "a build's timeout, and the most a request may ask for")
	fs.DurationVar(&b.shutdownGrace, "shutdown-grace", service.DefaultShutdownGrace, "on SIGTERM, how long running builds may finish before they are marked interrupted")
	sizeVar(fs, &b.maxLog, "max-log", "a build's log is cut past this size")
	fs.StringVar(&b.signingKey, "signing-key", "", "cosign private key that signs builds asking for \"sign\" (password from $COSIGN_PASSWORD or --signing-key-password-file)")
	fs.StringVar(&b.keyPasswordFile, "signing-key-password-file", "", "file holding the signing key's password")
	fs.StringVar(&b.apiTokenFile, "api-token-file", "", "file of bearer tokens, one a line, for the build API (without: the API answers loopback clients only)")
	fs.BoolVar(&b.publicRead, "public-read", false, "let anyone read build records and logs")
	fs.StringVar(&b.goCache, "go-cache", "", "the Go build cache the builds share (default DATA/gocache)")
	fs.StringVar(&b.registryName, "registry-name", "", "HOST[:PORT] that builds name the server's registry by in their refs (default: the listen address, 127.0.0.1 for an unspecified host)")
}

func (b *buildFlags) check() error {
	for _, c := range []struct {
		name string
		ok   bool
	}{
		{"--max-upload", b.maxUpload > 0}, {"--max-source", b.maxSource > 0}, {"--max-files", b.maxFiles > 0}, {"--max-builds", b.maxBuilds > 0},
		{"--max-queue", b.maxQueue > 0}, {"--build-timeout", b.buildTimeout > 0}, {"--shutdown-grace", b.shutdownGrace >= 0},
		{"--max-log", b.maxLog > 0},
	} {
		if !c.ok {
			return fmt.Errorf("%s must be positive", c.name)
		}
	}
	if b.keyPasswordFile != "" && b.signingKey == "" {
		return errors.New("--signing-key-password-file needs --signing-key")
	}
	return nil
}

// builds is the running build service, as run wires it.
type builds struct {
	svc     *service.Service
	db      *records.DB
	metrics *prometheus.Registry
	dir     string // the data directory (for readiness)
}

// startBuilds opens the records, and starts the build service: its builds
// push to reg (the server's own registry, reached in process with a token
// minted for this run).
func startBuilds(ctx context.Context, f *flags, ln net.Listener, reg http.Handler, pushToken string, log *slog.Logger) (*builds, error) {
	b := &f.builds
	// The go command refuses a relative GOCACHE, and builds run in
	// directories of their own: every path under --data is absolute.
	data, err := filepath.Abs(f.DataDir)
	if err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	dirs := map[string]string{}
	for _, d := range []string{"uploads", "builds", "cache", "gocache", "gomodcache"} {
		dirs[d] = filepath.Join(data, d)
		if err := os.MkdirAll(dirs[d], 0o755); err != nil {
			return nil, fmt.Errorf("data directory: %w", err)
		}
	}
	key, err := b.key()
	if err != nil {
		return nil, err
	}
	tokens, err := b.tokens(log)
	if err != nil {
		return nil, err
	}
	db, err := records.Open(ctx, filepath.Join(data, "records.db"), records.WithMaxLogBytes(b.maxLog))
	if err != nil {
		return nil, fmt.Errorf("opening the build records: %w", err)
	}
	if b.goCache != "" {
		dirs["gocache"] = b.goCache
	}
	goEnv := buildEnv(os.Environ(), dirs["gocache"], dirs["gomodcache"], dirs["builds"])
	fetcher := &source.Fetcher{
		Workspace: b.workspace, UploadDir: dirs["uploads"],
		Limits:   source.Limits{MaxUpload: b.maxUpload, MaxUnpacked: b.maxSource, MaxSource: b.maxSource, MaxFiles: b.maxFiles},
		GoEnv:    goEnv,
		GitAllow: b.gitAllow,
	}
	name := b.registryName
	if name == "" {
		name = registryName(ln.Addr())
	}
	metrics := prometheus.NewRegistry()
	svc, err := service.New(ctx, service.Config{
		Records: db,
		Sources: sources{fetcher},
		Runner: &builder{
			env: goEnv, registry: name, local: inProcess{h: reg, token: pushToken},
			key: key, cacheDir: dirs["cache"], version: Version,
		},
		Logger: log, TempDir: dirs["builds"], Tokens: tokens, PublicRead: b.publicRead,
		MaxRunning: b.maxBuilds, MaxQueue: b.maxQueue, BuildTimeout: b.buildTimeout, ShutdownGrace: b.shutdownGrace,
		MaxUpload: b.maxUpload, Version: Version, Metrics: metrics,
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	log.Info("build service", "records", filepath.Join(data, "records.db"), "registry", name,
		"workspace", b.workspace, "git_allow", b.gitAllow, "signing", key.Path != "", "api_tokens", len(tokens), "max_builds", b.maxBuilds)
	return &builds{svc: svc, db: db, metrics: metrics, dir: data}, nil
}

// key loads the signing key's path and password.
func (b *buildFlags) key() (request.Key, error) {
	if b.signingKey == "" {
		return request.Key{}, nil
	}
	path, err := filepath.Abs(b.signingKey)
	if err != nil {
		return request.Key{}, err
	}
	if _, err := os.Stat(path); err != nil {
		return request.Key{}, fmt.Errorf("--signing-key: %w", err)
	}
	pw := []byte(os.Getenv("COSIGN_PASSWORD"))
	if b.keyPasswordFile != "" {
		data, err := os.ReadFile(b.keyPasswordFile)
		if err != nil {
			return request.Key{}, fmt.Errorf("--signing-key-password-file: %w", err)
		}
		pw = []byte(strings.TrimRight(string(data), "\r\n"))
	}
	return request.Key{Path: path, Password: pw}, nil
}

// tokens reads --api-token-file.
func (b *buildFlags) tokens(log *slog.Logger) ([]string, error) {
	if b.apiTokenFile == "" {
		return nil, nil
	}
	if w := registry.SecretFileWarning(b.apiTokenFile); w != "" {
		log.Warn("secret file readable by others", "file", b.apiTokenFile, "problem", w)
	}
	t, err := registry.ReadTokens(b.apiTokenFile)
	if err != nil {
		return nil, fmt.Errorf("--api-token-file: %w", err)
	}
	return t, nil
}

// buildEnv is the Go environment of the service's builds: the server's
// own, with the caches under the data directory and workspaces off. A
// fetched source has no .git (source leaves it out), so git is kept from
// finding one above the build directory (which would stamp the server's
// own checkout into a build), and the go command stamps no VCS state.
func buildEnv(environ []string, gocache, gomodcache, builds string) []string {
	env := make([]string, 0, len(environ)+7)
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "GOCACHE", "GOMODCACHE", "GOWORK", "GOFLAGS", "GIT_CONFIG_NOSYSTEM", "GIT_CONFIG_GLOBAL", "GIT_CEILING_DIRECTORIES":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "GOCACHE="+gocache, "GOMODCACHE="+gomodcache, "GOWORK=off", "GOFLAGS=-buildvcs=false",
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull, "GIT_CEILING_DIRECTORIES="+builds)
}

// registryName is how refs name a listener's registry.
func registryName(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return addr.String()
	}
	host := tcp.IP.String()
	if tcp.IP == nil || tcp.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, strconv.Itoa(tcp.Port))
}

// newPushToken is a token for the service's own pushes, never written.
func newPushToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// ready reports whether the service can take builds: the records answer,
// the workers are alive and the data directory is writable.
func (b *builds) ready(ctx context.Context) error {
	if err := b.svc.Ready(ctx); err != nil {
		return err
	}
	f, err := os.CreateTemp(b.dir, ".ready-*")
	if err != nil {
		return errors.New("the data directory is not writable")
	}
	f.Close()
	return os.Remove(f.Name())
}

// sources adapts source.Fetcher to the service's Sources.
type sources struct{ f *source.Fetcher }

func (s sources) Resolve(ctx context.Context, spec source.Spec) (buildrecord.Source, error) {
	r, err := s.f.Resolve(ctx, spec)
	return r.Source, err
}

func (s sources) Fetch(ctx context.Context, src buildrecord.Source, dir string) (string, error) {
	return s.f.Fetch(ctx, source.Resolved{Source: src}, dir)
}

func (s sources) SaveUpload(ctx context.Context, r io.Reader) (string, bool, error) {
	return s.f.SaveUpload(ctx, r)
}

func (s sources) DeleteUpload(id string) error { return s.f.DeleteUpload(id) }

func (s sources) Config(ctx context.Context, src buildrecord.Source) (*source.ConfigFile, error) {
	return s.f.Config(ctx, source.Resolved{Source: src})
}

// countBytes counts the bytes a handler reads and writes.
func countBytes(h http.Handler, in, out prometheus.Counter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			r.Body = &countingBody{r.Body, counter{in}}
		}
		h.ServeHTTP(&countingWriter{w, counter{out}}, r)
	})
}

// counter adds what a read or a write moved. The body and the writer
// below are two types only because they wrap two interfaces.
type counter struct{ prometheus.Counter }

func (c counter) add(n int, err error) (int, error) {
	c.Add(float64(n))
	return n, err
}

type countingBody struct {
	io.ReadCloser
	c counter
}

func (b *countingBody) Read(p []byte) (int, error) { return b.c.add(b.ReadCloser.Read(p)) }

type countingWriter struct {
	http.ResponseWriter
	c counter
}

func (w *countingWriter) Write(p []byte) (int, error) { return w.c.add(w.ResponseWriter.Write(p)) }

// Unwrap lets http.ResponseController reach the connection.
func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ReadFrom keeps the connection's sendfile path for files written through.
func (w *countingWriter) ReadFrom(r io.Reader) (int64, error) {
	n, err := io.Copy(w.ResponseWriter, r)
	w.c.Add(float64(n))
	return n, err
}
