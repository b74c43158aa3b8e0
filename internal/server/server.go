package server

import (
	"context"
	"encoding/json"
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
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kilnbuild/kiln/internal/registry"
	"github.com/kilnbuild/kiln/internal/service"
	"github.com/kilnbuild/kiln/internal/store"
)

// Version is set at link time (-X github.com/kilnbuild/kiln/internal/server.Version=…).
var Version = "devel"

// Options configure the service.
type Options struct {
	Addr    string // listen address, e.g. ":8080"
	DataDir string // where the service keeps its state
	// Registry serves /v2/; nil serves none.
	Registry http.Handler
	// RegistryOnly serves the registry and /healthz alone.
	RegistryOnly bool
	// API serves /api/ (the build service); nil serves none.
	API http.Handler
	// Ready, when set, answers /readyz.
	Ready func(context.Context) error
	// Metrics, when set, serves /metrics.
	Metrics http.Handler
}

// Handler serves the service's HTTP API.
func Handler(opts Options) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if opts.DataDir != "" {
			if _, err := os.Stat(opts.DataDir); err != nil {
				http.Error(w, "data directory unavailable", http.StatusServiceUnavailable)
				return
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	if opts.Ready != nil {
		mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			if err := opts.Ready(r.Context()); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				io.WriteString(w, "not ready: "+err.Error()+"\n")
				return
			}
			io.WriteString(w, "ok\n")
		})
	}
	if opts.Metrics != nil {
		mux.Handle("GET /metrics", opts.Metrics)
	}
	if opts.API != nil {
		mux.Handle("/api/", opts.API)
	}
	if !opts.RegistryOnly {
		mux.HandleFunc("GET /version", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(versionInfo())
		})
	}
	if opts.Registry == nil {
		return mux
	}
	// The registry sees /v2/ paths as sent: the mux would clean and
	// redirect a "../" that the registry must refuse with NAME_INVALID.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2" || strings.HasPrefix(r.URL.Path, "/v2/") {
			opts.Registry.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// VersionInfo is what /version returns.
type VersionInfo struct {
	Version   string `json:"version"`
	GoVersion string `json:"goVersion"`
	Revision  string `json:"revision,omitempty"`
	Modified  bool   `json:"modified,omitempty"`
	Platform  string `json:"platform"`
}

func versionInfo() VersionInfo {
	v := VersionInfo{Version: Version, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Revision = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	return v
}

// flags are the command line of the service.
type flags struct {
	Options
	store          string
	htpasswd       string
	tokenFile      string
	private        []string
	tlsCert        string
	tlsKey         string
	anonymousWrite bool
	noSync         bool
	gcInterval     time.Duration
	limits         registry.Limits
	net            netLimits
	logFormat      string
	builds         buildFlags
}

// netLimits bound connections and the time requests take.
type netLimits struct {
	maxConns      int
	headerTimeout time.Duration
	idleTimeout   time.Duration
	ioTimeout     time.Duration
	minRate       int64
}

var defaultNetLimits = netLimits{
	maxConns:      1024,
	headerTimeout: 10 * time.Second,
	idleTimeout:   2 * time.Minute,
	ioTimeout:     time.Minute,
	minRate:       32 << 10,
}

func parseFlags(args []string, stderr io.Writer) (*flags, error) {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := &flags{}
	fs.StringVar(&f.Addr, "addr", ":8080", "address to listen on")
	fs.StringVar(&f.DataDir, "data", "", "directory for the service's data (created if missing): the registry's store DATA/store, and the build service's records, caches and uploads (without it the build service is off)")
	fs.StringVar(&f.store, "store", "", "the registry's store, an OCI layout shared with `kiln build` (default DATA/store)")
	fs.BoolVar(&f.RegistryOnly, "registry-only", false, "serve the registry (/v2/) and /healthz alone")
	fs.StringVar(&f.htpasswd, "htpasswd", "", "htpasswd file of bcrypt entries: its users may push and read private repositories")
	fs.StringVar(&f.tokenFile, "token-file", "", "file of bearer tokens, one a line, that may push and read private repositories")
	fs.Func("private", "repository pattern that needs credentials to read (team/* covers everything below team/); repeatable", func(s string) error {
		f.private = append(f.private, s)
		return nil
	})
	fs.StringVar(&f.tlsCert, "tls-cert", "", "TLS certificate file (PEM); with --tls-key serves HTTPS")
	fs.StringVar(&f.tlsKey, "tls-key", "", "TLS private key file (PEM)")
	fs.BoolVar(&f.anonymousWrite, "anonymous-push-unsafe", false, "let anyone push even when listening beyond loopback")
	fs.BoolVar(&f.noSync, "no-fsync-unsafe", false, "never fsync the store: faster small pushes, but a machine crash can lose acknowledged blobs")
	fs.DurationVar(&f.gcInterval, "gc-interval", 0, "collect the store's garbage this often, e.g. 24h (0: never; `kiln gc` refuses while a server runs)")
	f.limits, f.net = registry.DefaultLimits, defaultNetLimits
	fs.IntVar(&f.net.maxConns, "max-conns", f.net.maxConns, "most connections open at once; more wait to be accepted")
	fs.DurationVar(&f.net.idleTimeout, "idle-timeout", f.net.idleTimeout, "close a keep-alive connection idle this long")
	fs.DurationVar(&f.net.ioTimeout, "io-timeout", f.net.ioTimeout, "longest wait for any read of a request body or write of a response")
	sizeVar(fs, &f.net.minRate, "min-rate", "slowest transfer, bytes a second, a request may average after its first --io-timeout")
	fs.IntVar(&f.limits.UploadSessions, "max-uploads", f.limits.UploadSessions, "most upload sessions open at once")
	fs.IntVar(&f.limits.UploadSessionsPerClient, "max-uploads-per-client", f.limits.UploadSessionsPerClient, "most upload sessions open at once from one IP address")
	fs.DurationVar(&f.limits.UploadTTL, "upload-ttl", f.limits.UploadTTL, "drop an upload session idle this long")
	sizeVar(fs, &f.limits.UploadMemory, "upload-memory", "upload bytes held in memory, all sessions together; beyond, uploads are staged on disk")
	sizeVar(fs, &f.limits.MaxBlobSize, "max-blob-size", "largest blob accepted")
	fs.IntVar(&f.limits.PasswordChecks, "password-checks", f.limits.PasswordChecks, "most bcrypt password checks running at once")
	fs.StringVar(&f.logFormat, "log-format", "auto", "log as text or json (auto: text on a terminal, JSON otherwise)")
	f.builds.register(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if err := f.builds.check(); err != nil {
		return nil, err
	}
	switch f.logFormat {
	case "auto", "text", "json":
	default:
		return nil, fmt.Errorf("--log-format %q: give text, json or auto", f.logFormat)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q: the server takes flags only", fs.Arg(0))
	}
	if f.gcInterval < 0 {
		return nil, fmt.Errorf("--gc-interval %s is negative: give a duration such as 24h, or 0 for never", f.gcInterval)
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return nil, errors.New("--tls-cert and --tls-key go together: give both or neither")
	}
	if f.store == "" && f.DataDir != "" {
		f.store = filepath.Join(f.DataDir, "store")
	}
	if f.RegistryOnly && f.store == "" {
		return nil, errors.New("--registry-only needs somewhere to keep images: give --data DIR or --store DIR")
	}
	for _, c := range []struct {
		name string
		ok   bool
	}{
		{"--max-conns", f.net.maxConns > 0}, {"--idle-timeout", f.net.idleTimeout > 0}, {"--io-timeout", f.net.ioTimeout > 0},
		{"--min-rate", f.net.minRate >= 0}, {"--max-uploads", f.limits.UploadSessions > 0},
		{"--max-uploads-per-client", f.limits.UploadSessionsPerClient > 0}, {"--upload-ttl", f.limits.UploadTTL > 0},
		{"--upload-memory", f.limits.UploadMemory > 0}, {"--max-blob-size", f.limits.MaxBlobSize > 0},
		{"--password-checks", f.limits.PasswordChecks > 0},
	} {
		if !c.ok {
			return nil, fmt.Errorf("%s must be positive", c.name)
		}
	}
	return f, nil
}

// access turns the flags into the registry's access rules. Without
// credentials, anyone may push only when the listener is loopback alone.
func (f *flags) access(ln net.Listener, log *slog.Logger) (registry.Access, error) {
	var a registry.Access
	var err error
	for _, file := range []string{f.htpasswd, f.tokenFile} {
		if w := registry.SecretFileWarning(file); file != "" && w != "" {
			log.Warn("secret file readable by others", "file", file, "problem", w)
		}
	}
	if f.htpasswd != "" {
		if a.Users, err = registry.ReadHtpasswd(f.htpasswd); err != nil {
			return a, err
		}
	}
	if f.tokenFile != "" {
		if a.Tokens, err = registry.ReadTokens(f.tokenFile); err != nil {
			return a, err
		}
	}
	a.Private = f.private
	loopback := false
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok {
		loopback = tcp.IP.IsLoopback()
	}
	a.AnonymousWrite = f.anonymousWrite || (loopback && !a.HasCredentials())
	return a, a.Validate()
}

// Run parses flags and serves until ctx is done, then shuts down gracefully.
func Run(ctx context.Context, args []string, stderr io.Writer) error {
	return run(ctx, args, stderr, nil)
}

// run is Run on clock (nil: the real one).
func run(ctx context.Context, args []string, stderr io.Writer, clock registry.Clock) error {
	f, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if f.DataDir != "" {
		if err := os.MkdirAll(f.DataDir, 0o755); err != nil {
			return fmt.Errorf("data directory: %w", err)
		}
	}
	log := newLogger(stderr, f.logFormat)
	ln, err := net.Listen("tcp", f.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", f.Addr, err)
	}
	defer ln.Close()
	var pushToken string
	var svc *service.Service
	if f.store != "" {
		access, err := f.access(ln, log)
		if err != nil {
			return err
		}
		credentials := access.HasCredentials() // the users', before the service's own token
		if !f.RegistryOnly && f.DataDir != "" && !access.AnonymousWrite {
			// The build service pushes in process; where anonymous
			// clients may not push, it presents a token of its own. (A
			// token is a credential: /v2/ then asks clients for theirs,
			// so it is not added to a registry open to anonymous pushes.)
			pushToken = newPushToken()
			access.Tokens = append(access.Tokens, pushToken)
		}
		layout, err := store.Open(f.store)
		if err != nil {
			return err
		}
		if f.noSync {
			layout.DisableSyncUnsafe()
		}
		st := layout.Repositories()
		// Small blobs are kept in the store's journal until they are
		// needed as files; what a crash left there is written out now.
		if err := st.OpenJournal(); err != nil {
			return err
		}
		defer func() {
			if err := st.CloseJournal(); err != nil {
				log.Error("writing out the blob journal", "err", err)
			}
		}()
		if f.gcInterval > 0 {
			defer collectGarbage(ctx, st, f.gcInterval, log)() // stopped before the journal closes
		}
		reg, err := registry.New(st, registry.Options{Access: access, Log: log, Limits: f.limits, Clock: clock})
		if err != nil {
			return err
		}
		defer reg.Close() // before the journal closes: deferred later, runs earlier
		f.Registry = reg
		log.Info("registry", "store", f.store, "anonymous_push", access.AnonymousWrite, "credentials", credentials, "fsync", !f.noSync)
	}
	if !f.RegistryOnly && f.DataDir != "" {
		// The builds' own pushes, made in process, are counted too.
		bytesIn := prometheus.NewCounter(prometheus.CounterOpts{Name: "kiln_registry_received_bytes_total", Help: "Bytes of request bodies the registry read."})
		bytesOut := prometheus.NewCounter(prometheus.CounterOpts{Name: "kiln_registry_sent_bytes_total", Help: "Bytes of responses the registry wrote."})
		f.Registry = countBytes(f.Registry, bytesIn, bytesOut)
		b, err := startBuilds(ctx, f, ln, f.Registry, pushToken, log)
		if err != nil {
			return err
		}
		defer b.db.Close()
		b.metrics.MustRegister(bytesIn, bytesOut)
		f.API, f.Ready, f.Metrics = b.svc.Handler(), b.ready, b.svc.MetricsHandler()
		svc = b.svc
	}
	// Bodies and responses are paced (see paced) instead of ReadTimeout
	// and WriteTimeout, which would cut off large blobs.
	srv := &http.Server{
		Handler:           paced(Handler(f.Options), f.net.ioTimeout, f.net.minRate),
		ReadHeaderTimeout: f.net.headerTimeout,
		IdleTimeout:       f.net.idleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	ln = limitConnections(ln, f.net.maxConns)
	log.Info("serving", "addr", ln.Addr().String(), "version", Version, "tls", f.tlsCert != "", "max_conns", f.net.maxConns)
	errc := make(chan error, 1)
	go func() {
		if f.tlsCert != "" {
			errc <- srv.ServeTLS(ln, f.tlsCert, f.tlsKey)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	if svc != nil {
		// Running builds get their grace; the rest are marked
		// interrupted, and queued ones stay queued for the next start.
		log.Info("shutting down: builds get their grace", "grace", f.builds.shutdownGrace)
		if err := svc.Shutdown(context.Background()); err != nil {
			log.Error("shutting down the build service", "err", err)
		}
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newLogger logs as format says: text, json, or auto (text on a terminal).
func newLogger(w io.Writer, format string) *slog.Logger {
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				format = "text"
			}
		}
	}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}
