package compare

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kilnbuild/kiln/internal/imageref"
	"github.com/kilnbuild/kiln/internal/oneline"
	"github.com/kilnbuild/kiln/internal/platform"
)

// The kinds of reference Open understands; internal/imageref has the
// grammar.
const (
	KindRegistry      = string(imageref.Registry)      // REGISTRY/REPO[:TAG|@DIGEST]
	KindOCI           = string(imageref.OCI)           // oci:DIR[:NAME]
	KindOCIArchive    = string(imageref.OCIArchive)    // oci-archive:FILE[:NAME]
	KindDockerArchive = string(imageref.DockerArchive) // docker-archive:FILE[:REPO:TAG]
	KindStore         = string(imageref.Store)         // kiln.local/NAME[:TAG|@DIGEST]
)

// Options says where to find images and how to read them. The zero value
// reads registries with the default keychain and the host's temp directory.
type Options struct {
	// Platform picks the child of an image index; nil means linux/amd64,
	// else linux on the host's architecture, else the index's only image.
	Platform *v1.Platform
	// StoreDir is the local store, where kiln.local/… references are found.
	StoreDir string
	// Dir resolves relative paths in references; "" means the process's.
	Dir string
	// TempDir holds unpacked oci-archives and Go executables while their
	// build info is read; "" means os.TempDir().
	TempDir string
	// Keychain and Transport are for registries; nil means
	// authn.DefaultKeychain and the default transport.
	Keychain  authn.Keychain
	Transport http.RoundTripper
	// Jobs bounds the images, and the layers of each image, read at once;
	// 0 means GOMAXPROCS.
	Jobs int
	// TopFiles is how many of the largest files to list; 0 means 10.
	TopFiles int
	// Limits are the reading budgets of each image; zero fields take the
	// defaults.
	Limits Limits
}

func (o Options) jobs() int {
	if o.Jobs > 0 {
		return o.Jobs
	}
	return runtime.GOMAXPROCS(0)
}

func (o Options) topFiles() int {
	if o.TopFiles > 0 {
		return o.TopFiles
	}
	return 10
}

// Source is one opened image: a single-platform image, picked from an index
// when the reference names one.
type Source struct {
	Ref         string   // as the user gave it
	Kind        string   // one of the Kind… constants
	Image       v1.Image // the platform image
	Digest      v1.Hash  // of Image's manifest
	IndexDigest v1.Hash  // of the index Image was picked from; zero if none
	Platform    string   // os/arch[/variant] from the config; "" if unset

	// attached finds the image tagged tag (sha256-<hex>.att, .sbom) next
	// to the image, or sign.ErrNotFound; nil where there is nowhere to look.
	attached func(ctx context.Context, tag string) (v1.Image, error)
	cleanup  func() error
	meter    *meter // the reading budgets Open began with
}

// Close removes what Open unpacked (an oci-archive's layout).
func (s *Source) Close() error {
	if s == nil || s.cleanup == nil {
		return nil
	}
	err := s.cleanup()
	s.cleanup = nil
	return err
}

// Open finds the image ref names: a registry reference, oci:DIR[:NAME],
// oci-archive:FILE[:NAME], docker-archive:FILE[:REPO:TAG], or a kiln.local/…
// reference in the local store. The caller must Close the source. Errors
// are one line and start with ref.
func Open(ctx context.Context, ref string, opt Options) (*Source, error) {
	m := newMeter(opt.Limits)
	s, err := open(ctx, ref, opt, m)
	if err != nil {
		return nil, &refError{ref: ref, err: err}
	}
	s.Ref = ref
	s.meter = m
	// The config is read next; a registry would send all it declares.
	if mf, err := s.Image.Manifest(); err == nil && mf.Config.Size > m.lim.JSON {
		s.Close()
		return nil, &refError{ref: ref, err: jsonTooLarge("config "+mf.Config.Digest.String(), mf.Config.Size, m.lim.JSON)}
	}
	if cf, err := s.Image.ConfigFile(); err == nil && cf.OS != "" {
		s.Platform = (&v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}).String()
		if w := opt.Platform; w != nil && s.IndexDigest.Hex == "" && !platform.Matches(v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}, *w) {
			s.Close()
			return nil, fmt.Errorf("%s: the image is %s, not %s", ref, s.Platform, w)
		}
	}
	if s.Digest.Hex == "" {
		if s.Digest, err = s.Image.Digest(); err != nil {
			s.Close()
			return nil, &refError{ref: ref, err: err}
		}
	}
	return s, nil
}

func open(ctx context.Context, ref string, opt Options, m *meter) (*Source, error) {
	r, err := imageref.Parse(ref, opt.Dir)
	if err != nil {
		return nil, err
	}
	switch r.Kind {
	case imageref.OCI:
		return openLayout(r.Path, "", r.Name, KindOCI, opt, m)
	case imageref.OCIArchive:
		return openOCIArchive(r.Path, r.Name, opt, m)
	case imageref.DockerArchive:
		return openDockerArchive(r.Path, r.Name, opt, m)
	case imageref.Store:
		if opt.StoreDir == "" {
			return nil, errors.New("no local store directory to look in")
		}
		if _, err := os.Stat(filepath.Join(opt.StoreDir, "index.json")); err != nil {
			return nil, fmt.Errorf("no local store at %s", opt.StoreDir)
		}
		return openLayout(opt.StoreDir, " in the local store "+opt.StoreDir, ref, KindStore, opt, m)
	}
	return openRemote(ctx, ref, opt, m)
}

// refError is an error about one reference, in one line; errors.Is and
// errors.As still see the error it wraps.
type refError struct {
	ref string
	err error
}

func (e *refError) Error() string { return e.ref + ": " + oneline.First(e.err.Error()) }
func (e *refError) Unwrap() error { return e.err }
