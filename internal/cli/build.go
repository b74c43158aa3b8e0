package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kilnbuild/kiln/internal/config"
	"github.com/kilnbuild/kiln/internal/pipeline"
	"github.com/kilnbuild/kiln/internal/publish"
	"github.com/kilnbuild/kiln/internal/remoteopt"
	"github.com/kilnbuild/kiln/internal/request"
	"github.com/kilnbuild/kiln/internal/sign"
)

type buildFlags struct {
	platforms        []string
	jobs             int
	output           string
	tags             []string
	bare             bool
	baseImportPaths  bool
	preserveImports  bool
	compression      string
	compressionLevel int
	load             bool
	json             bool
	base             string
	store            string
	sign             bool
	key              string
	sigFormat        string
	remote           remoteFlags
	ko               koFlags
	imageRefs        string // kiln build's --image-refs (resolve has its own)
}

func newBuildCommand(inv Invocation) *cobra.Command {
	f := &buildFlags{}
	cmd := &cobra.Command{
		Use:   "build [flags] PACKAGE...",
		Short: "Compile Go main packages and publish them as images",
		Long: `Compile each Go main package (an import path or a ./dir path) for every
platform, put the binary at /ko-app/<name> on the base image, and publish the
result. Prints one REF@sha256:... line per package on stdout; progress goes to
stderr.

Outputs (--output): a registry repository (also from KO_DOCKER_REPO), oci:DIR,
oci-archive:FILE, docker-archive:FILE; by default the local store.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return errors.New("no packages given: name one or more main packages, e.g. kiln build ./cmd/server")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBuild(cmd, inv, f, args)
		},
	}
	f.register(cmd.Flags())
	cmd.Flags().BoolVar(&f.json, "json", false, "print results as JSON instead of REF@sha256 lines")
	cmd.Flags().StringVar(&f.imageRefs, "image-refs", "", "also write the image references, one a line, to this file (for an index: the index and each platform's manifest), as ko")
	cmd.Flags().StringVar(&f.remote.url, "remote", "", "build on the build service at URL (kiln server) instead of here: the module is sent, the log follows, Ctrl-C cancels")
	cmd.Flags().StringVar(&f.remote.token, "token", "", "the build service's bearer token for --remote (default: $KILN_TOKEN)")
	return cmd
}

// register adds kiln build's flags (but --json) to fl: kiln build's own,
// and those of the commands that build first (resolve, apply, run).
func (f *buildFlags) register(fl *pflag.FlagSet) {
	fl.StringSliceVar(&f.platforms, "platform", nil, "platforms to build: linux/amd64,linux/arm64,linux/arm/v7 | all | local (default: $KO_DEFAULTPLATFORMS, else .ko.yaml defaultPlatforms, else $GOOS/$GOARCH, else the host's linux arch)")
	fl.IntVarP(&f.jobs, "jobs", "j", runtime.GOMAXPROCS(0), "compiles to run at once")
	fl.StringVarP(&f.output, "output", "o", "", "where to publish: REGISTRY/REPO, oci:DIR, oci-archive:FILE, docker-archive:FILE, ko.local[/…] (podman or docker), kind.local[/…] (default: $KO_DOCKER_REPO, else the local store)")
	fl.StringSliceVarP(&f.tags, "tags", "t", []string{"latest"}, "tags to publish (also --tag)")
	fl.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if name == "tag" { // kiln's first spelling; ko's is --tags
			return "tags"
		}
		return pflag.NormalizedName(name)
	})
	fl.BoolVar(&f.bare, "bare", false, "name the image after the repository alone")
	fl.BoolVarP(&f.baseImportPaths, "base-import-paths", "B", false, "name the image after the package's last path element")
	fl.BoolVarP(&f.preserveImports, "preserve-import-paths", "P", false, "name the image after the full import path")
	fl.StringVar(&f.compression, "compression", "", "layer compression: gzip, zstd, none, or auto: none for the store, oci:, --load and loopback registries, gzip elsewhere (so the digest depends on the destination) (default: .ko.yaml, else gzip)")
	fl.IntVar(&f.compressionLevel, "compression-level", 0, "compression level (gzip 1-9, zstd 1-22; 0: the default)")
	fl.BoolVar(&f.load, "load", false, "also load the images into podman (or docker) through its CLI")
	fl.StringVar(&f.base, "base", "", "base image for every package: static, scratch, REF, oci:DIR[:TAG] or ko.local/NAME[:TAG] from podman or docker (default: .ko.yaml, $KO_DEFAULTBASEIMAGE, else static)")
	fl.BoolVar(&f.sign, "sign", false, "sign every image pushed, and attach a signed SPDX SBOM and SLSA provenance (also kiln.defaults.sign in .ko.yaml)")
	fl.StringVar(&f.sigFormat, "signature-format", "tags", "where --sign stores signatures and attestations: tags (cosign's sha256-<hex>.sig/.att) or referrers (Sigstore bundles as OCI 1.1 referrers, cosign v3's default)")
	fl.StringVar(&f.key, "key", "", "cosign private key for --sign, password from $COSIGN_PASSWORD (also kiln.defaults.key)")
	fl.StringVar(&f.store, "store", "", "local store directory (default: $KILN_STORE, else $XDG_DATA_HOME/kiln/store, else ~/.local/share/kiln/store)")
	f.ko.register(fl)
}

func runBuild(cmd *cobra.Command, inv Invocation, f *buildFlags, args []string) error {
	if f.remote.url != "" {
		for _, name := range koOnly {
			if cmd.Flags().Changed(name) {
				return fmt.Errorf("--%s does not go with --remote: the build service publishes to its registry", name)
			}
		}
		return runRemote(cmd, inv, f, args)
	}
	if f.remote.token != "" {
		return errors.New("--token goes with --remote")
	}
	outcomes, err := buildPackages(cmd.Context(), inv, f, args)
	if err != nil {
		return err
	}
	if f.imageRefs != "" {
		if err := writeImageRefs(abs(inv.Dir, f.imageRefs), outcomes); err != nil {
			return err
		}
	}
	if f.json {
		enc := json.NewEncoder(inv.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(request.Results(outcomes))
	}
	for _, o := range outcomes {
		fmt.Fprintln(inv.Stdout, o.Ref)
	}
	return nil
}

// buildPackages runs the build request that f and the environment make
// for pkgs: what kiln build runs, and what resolve, apply and run build.
func buildPackages(ctx context.Context, inv Invocation, f *buildFlags, pkgs []string) ([]request.Outcome, error) {
	cfg, err := loadConfig(inv)
	if err != nil {
		return nil, err
	}
	created, err := sourceDateEpoch(inv.getenv("SOURCE_DATE_EPOCH"))
	if err != nil {
		return nil, err
	}
	platforms, err := koPlatforms(inv, f.platforms, cfg)
	if err != nil {
		return nil, err
	}
	kodata, err := koData(inv)
	if err != nil {
		return nil, err
	}
	b := request.Build{
		Packages: pkgs, Platforms: platforms, Base: f.base, Tags: f.tags,
		Bare: f.bare, BaseImportPaths: f.baseImportPaths, PreserveImportPaths: f.preserveImports,
		Compression: f.compression, CompressionLevel: f.compressionLevel,
		Sign: f.sign, SignatureFormat: f.sigFormat, Jobs: f.jobs,
	}
	if err := f.ko.apply(&b); err != nil {
		return nil, err
	}
	if err := f.ko.check(f); err != nil {
		return nil, err
	}
	dest, err := publisherFor(inv, f)
	if err != nil {
		return nil, err
	}
	bases := &engineBases{inv: inv}
	defer bases.Close()
	var outcomes []request.Outcome
	err = withVerbose(f.ko.verbose, inv.Stderr, func() error {
		outcomes, err = request.Run(ctx, request.Env{
			Dir: inv.Dir, Env: inv.Env, Config: cfg,
			Publisher: dest.pub, Repo: dest.repo, Signatures: dest.sigs, Transport: dest.transport,
			Key:      request.Key{Path: f.key, Password: []byte(inv.getenv("COSIGN_PASSWORD")), FromConfig: true},
			CacheDir: CacheDir(inv.getenv), Created: created, Progress: inv.Stderr, KilnVersion: Version,
			KoData: kodata, Builder: goBuilder(inv), Engine: bases.read, SBOMDir: f.ko.sbomDir,
		}, b)
		return err
	})
	if err != nil {
		return nil, err
	}
	for i := range outcomes {
		o := &outcomes[i]
		o.Ref = f.ko.ref(o.Repo, o.Digest, f.tags, dest.published)
		if dest.engine != nil {
			if o.Ref, err = engineRef(o.Repo, o.Artifact, *dest.engine); err != nil {
				return nil, err
			}
		}
	}
	return outcomes, nil
}

// loadConfig finds .ko.yaml (KO_CONFIG_PATH, else the working directory)
// and applies KO_DEFAULTBASEIMAGE and koBuildDefaults.
func loadConfig(inv Invocation) (*config.Config, error) {
	path, err := config.Find(inv.getenv("KO_CONFIG_PATH"), inv.Dir)
	if err != nil {
		return nil, err
	}
	cfg := &config.Config{}
	if path != "" {
		if cfg, err = config.Load(path); err != nil {
			return nil, err
		}
	}
	if b := inv.getenv("KO_DEFAULTBASEIMAGE"); b != "" {
		cfg.DefaultBaseImage = b
	}
	return cfg, koBuildDefaults(inv, cfg)
}

func sourceDateEpoch(s string) (time.Time, error) {
	if s == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	return epochEnv("SOURCE_DATE_EPOCH", s)
}

// parseEpoch reads a Unix time in whole seconds, not before 1970.
func parseEpoch(s string) (time.Time, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	if n < 0 {
		return time.Time{}, errors.New("before 1970")
	}
	return time.Unix(n, 0).UTC(), nil
}

// StoreDir is where the local store lives: $KILN_STORE, else
// $XDG_DATA_HOME/kiln/store, else $HOME/.local/share/kiln/store.
func StoreDir(getenv func(string) string) (string, error) {
	if d := getenv("KILN_STORE"); d != "" {
		return d, nil
	}
	if d := getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "kiln", "store"), nil
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".local", "share", "kiln", "store"), nil
	}
	return "", errors.New("cannot place the local store: set HOME, XDG_DATA_HOME or KILN_STORE, or pass --output")
}

// CacheDir is where binaries and layers are kept between builds:
// $KILN_CACHE, else ko's $KOCACHE, else $XDG_CACHE_HOME/kiln, else
// $HOME/.cache/kiln; "" (no cache) when none is set.
func CacheDir(getenv func(string) string) string {
	for _, k := range []string{"KILN_CACHE", "KOCACHE"} {
		if d := getenv(k); d != "" {
			return d
		}
	}
	if d := getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "kiln")
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".cache", "kiln")
	}
	return ""
}

// destination is where a build publishes: the publisher, the repository
// images are named under, where their signatures go (nil when the
// destination cannot hold them), the transport for registries (nil: the
// default), whether anything is written at all (not with --push=false
// alone) and, for a local engine or kind, the platform loaded out of an
// index.
type destination struct {
	pub       publish.Publisher
	repo      string
	sigs      sign.Store
	transport http.RoundTripper
	published bool
	engine    *v1.Platform
}

// publisherFor turns --output (or KO_DOCKER_REPO, or the local store), -L,
// --push, --tarball and --oci-layout-path into a destination.
func publisherFor(inv Invocation, f *buildFlags) (destination, error) {
	var d destination
	if f.ko.insecure {
		d.transport = remoteopt.InsecureTransport()
	}
	repo := inv.getenv("KO_DOCKER_REPO")
	if f.ko.local {
		if repo == "" {
			repo = koLocalRepo
		}
		p := enginePlatform(inv)
		d.pub = &publish.Load{Env: inv.Env, Engine: publish.Engine{Platform: &p, DigestTags: true}}
		d.repo, d.published, d.engine = repo, true, &p
		return d, nil
	}
	out, from := f.output, "--output"
	if out == "" && repo != "" {
		out, from = repo, "KO_DOCKER_REPO"
	}
	if pub, p, ok := enginePublisher(inv, out); ok {
		for name, set := range map[string]bool{"--tarball": f.ko.tarball != "", "--oci-layout-path": f.ko.ociLayoutPath != "", "--load": f.load, "--push=false": !f.ko.push} {
			if set {
				return d, fmt.Errorf("%s=%s loads into the local engine or kind only, as ko's: drop %s", from, out, name)
			}
		}
		d.pub, d.repo, d.published, d.engine = pub, out, true, p
		return d, nil
	}
	var pubs publish.Multi
	switch {
	case out == "":
		dir := f.store
		if dir == "" {
			var err error
			if dir, err = StoreDir(inv.getenv); err != nil {
				return d, err
			}
		}
		pubs = append(pubs, &publish.ToLayout{Dir: dir})
		d.sigs = &sign.LayoutStore{Dir: dir}
		repo = pipeline.LocalRepo
	default:
		dest, err := publish.ParseDestination(out)
		if err != nil {
			return d, err
		}
		switch dest.Kind {
		case "registry":
			repo = dest.Repo
			pubs = append(pubs, &publish.ToRegistry{Repo: dest.Repo, Jobs: f.jobs, Transport: d.transport})
			d.sigs = &sign.RegistryStore{Transport: d.transport}
		case "oci":
			dir := abs(inv.Dir, dest.Path)
			pubs = append(pubs, &publish.ToLayout{Dir: dir})
			d.sigs = &sign.LayoutStore{Dir: dir}
		case "oci-archive":
			pubs = append(pubs, &publish.OCIArchive{File: abs(inv.Dir, dest.Path)})
		case "docker-archive":
			pubs = append(pubs, &publish.DockerArchive{File: abs(inv.Dir, dest.Path)})
		}
		if dest.Kind != "registry" && (repo == "" || out == repo) {
			repo = pipeline.LocalRepo
		}
	}
	if !f.ko.push {
		pubs, d.sigs = nil, nil
	}
	if f.load {
		pubs = append(pubs, &publish.Load{Env: inv.Env})
	}
	pubs = append(pubs, f.ko.publishers(inv.Dir)...)
	d.repo, d.published = repo, len(pubs) > 0
	switch len(pubs) {
	case 0:
		d.pub = discardPublisher{}
	case 1:
		d.pub = pubs[0]
	default:
		d.pub = pubs
	}
	return d, nil
}

func abs(dir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}
