package base

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kilnbuild/kiln/internal/imageref"
	"github.com/kilnbuild/kiln/internal/layer"
	"github.com/kilnbuild/kiln/internal/platform"
	"github.com/kilnbuild/kiln/internal/remoteopt"
)

// Reserved base names.
const (
	ScratchName = "scratch"
	StaticName  = "static"
	ociPrefix   = string(imageref.OCI) + ":"
)

// Options configure Resolve.
type Options struct {
	GOROOT    string            // Go toolchain root, for zoneinfo.zip (required for static)
	Dir       string            // scratch directory for layer files (required for static)
	Keychain  authn.Keychain    // nil → remoteopt.Keychain
	Transport http.RoundTripper // nil → remote.DefaultTransport
	// LayerCache, when set, keeps the static base's layer between runs.
	LayerCache *layer.Cache
	// Note, when set, is told what kiln assumed about the base (a single
	// image whose config names no platform); one line, no prefix.
	Note func(msg string)
	// Engine reads ko.local/… bases from the local container engine; nil
	// refuses them.
	Engine EngineReader
}

// Base is a resolved base image: an index or a single image.
// Its methods are safe for concurrent use.
type Base struct {
	name      string
	scratch   bool
	index     v1.ImageIndex // set for index bases
	image     v1.Image      // set for single-image bases
	digest    v1.Hash
	hasDigest bool
	note      func(string) // nil: notes are dropped

	once     sync.Once
	children []child // index bases: the usable manifests, in index order
	single   *v1.Platform
	err      error
}

// child is one platform-specific image of an index base.
type child struct {
	platform v1.Platform
	digest   v1.Hash
}

// Resolve finds the base image named by ref: "scratch", "static",
// "oci:DIR[:TAG]", ko.local/NAME[:TAG] (the local engine's, through
// opts.Engine) or a registry reference (tag or digest). Registry
// manifests are fetched now; blobs are fetched lazily, using ctx, so ctx
// must last until the base's layers have been read for the last time: until
// the image is published, not just built.
func Resolve(ctx context.Context, ref string, opts Options) (*Base, error) {
	switch {
	case ref == ScratchName:
		return &Base{name: ref, scratch: true}, nil
	case ref == StaticName:
		idx, err := Static(ctx, opts)
		if err != nil {
			return nil, err
		}
		return newIndexBase(ref, idx)
	}
	var b *Base
	var err error
	switch {
	case strings.HasPrefix(ref, ociPrefix):
		b, err = resolveLayout(ref)
	case isEngineRef(ref):
		b, err = resolveEngine(ctx, ref, opts.Engine)
	default:
		b, err = resolveRemote(ctx, ref, opts)
	}
	if err != nil {
		return nil, err
	}
	b.note = opts.Note
	return b, nil
}

func newIndexBase(ref string, idx v1.ImageIndex) (*Base, error) {
	d, err := idx.Digest()
	if err != nil {
		return nil, &Error{Ref: ref, Kind: Invalid, Err: err}
	}
	return &Base{name: ref, index: idx, digest: d, hasDigest: true}, nil
}

func resolveRemote(ctx context.Context, ref string, opts Options) (*Base, error) {
	if strings.TrimSpace(ref) == "" {
		return nil, &Error{Ref: ref, Kind: Invalid, Err: errors.New("empty reference")}
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, &Error{Ref: ref, Kind: Invalid, Err: err}
	}
	ropts := remoteopt.New(ctx, opts.Keychain, opts.Transport)
	desc, err := remote.Get(r, ropts...)
	if err != nil {
		return nil, classify(ref, err)
	}
	b := &Base{name: ref, digest: desc.Digest, hasDigest: true}
	switch mt := desc.MediaType; {
	case mt.IsIndex():
		b.index, err = desc.ImageIndex()
	case mt.IsImage():
		b.image, err = desc.Image()
	default:
		err = fmt.Errorf("unsupported manifest media type %q", mt)
	}
	if err != nil {
		return nil, &Error{Ref: ref, Kind: Invalid, Err: err}
	}
	return b, nil
}

// Name is the reference as given to Resolve.
func (b *Base) Name() string { return b.name }

// Digest is the digest of the resolved manifest or index; false for scratch.
func (b *Base) Digest() (v1.Hash, bool) { return b.digest, b.hasDigest }

// Index returns the index when the base is one.
func (b *Base) Index() (v1.ImageIndex, bool) { return b.index, b.index != nil }

// Platforms lists the platforms the base offers, in index order. Attestation
// and other non-image entries of an index are skipped. Scratch offers any
// linux platform; it reports the same list as the static base.
func (b *Base) Platforms() ([]v1.Platform, error) {
	if b.scratch {
		return append([]v1.Platform(nil), staticPlatforms...), nil
	}
	if err := b.load(); err != nil {
		return nil, err
	}
	if b.index == nil {
		return []v1.Platform{*b.single}, nil
	}
	out := make([]v1.Platform, 0, len(b.children))
	for _, c := range b.children {
		if !containsPlatform(out, c.platform) {
			out = append(out, c.platform)
		}
	}
	return out, nil
}

// Image returns the base image for p. For an index this is the child whose
// os and architecture match and whose variant matches (any variant when p has
// none; an exact match is preferred). A single image is returned when its
// config's platform matches p; a config that names no os or architecture is
// taken as linux and amd64, as ko takes it. When nothing matches, the error
// wraps ErrPlatformMissing.
func (b *Base) Image(p v1.Platform) (v1.Image, error) {
	if b.scratch {
		return scratchImage(b.name, p)
	}
	if err := b.load(); err != nil {
		return nil, err
	}
	if b.index == nil {
		if platform.Matches(*b.single, p) {
			return b.image, nil
		}
		return nil, &missingError{base: b.name, want: p, have: []v1.Platform{*b.single}}
	}
	best := -1
	for i, c := range b.children {
		if !platform.Matches(c.platform, p) {
			continue
		}
		if c.platform.Variant == p.Variant {
			best = i
			break
		}
		if best < 0 {
			best = i
		}
	}
	if best < 0 {
		have, _ := b.Platforms()
		return nil, &missingError{base: b.name, want: p, have: have}
	}
	img, err := b.index.Image(b.children[best].digest)
	if err != nil {
		return nil, classify(b.name, err)
	}
	return img, nil
}

// load reads what Platforms and Image need, once.
func (b *Base) load() error {
	b.once.Do(func() {
		if b.index == nil {
			cf, err := b.image.ConfigFile()
			if err != nil {
				b.err = classify(b.name, fmt.Errorf("reading image config: %w", err))
				return
			}
			b.single = singlePlatform(cf)
			if b.single.OS != cf.OS || b.single.Architecture != cf.Architecture {
				b.notef("base %q names no platform in its config: using it as %s, as ko does", b.name, platformString(*b.single))
			}
			return
		}
		b.children, b.err = indexChildren(b.index)
		if b.err != nil {
			b.err = classify(b.name, b.err)
		}
	})
	return b.err
}

// singlePlatform is the platform of a single-image base: its config's, with
// ko's defaults (linux, amd64) for a missing os or architecture. Tools that
// make an image from nothing (`crane append` without a base) leave both out.
func singlePlatform(cf *v1.ConfigFile) *v1.Platform {
	p := v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant, OSVersion: cf.OSVersion, OSFeatures: cf.OSFeatures}
	if p.OS == "" {
		p.OS = "linux"
	}
	if p.Architecture == "" {
		p.Architecture = "amd64"
	}
	return &p
}

func (b *Base) notef(format string, args ...any) {
	if b.note != nil {
		b.note(fmt.Sprintf(format, args...))
	}
}

// indexChildren lists the platform images of idx. Entries without a platform
// in their descriptor get it from their config.
func indexChildren(idx v1.ImageIndex) ([]child, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("reading index: %w", err)
	}
	var out []child
	for _, d := range im.Manifests {
		if !d.MediaType.IsImage() {
			continue // nested indexes, artifacts
		}
		if d.Annotations["vnd.docker.reference.type"] == "attestation-manifest" {
			continue
		}
		var p v1.Platform
		if d.Platform != nil {
			p = *d.Platform
		} else {
			img, err := idx.Image(d.Digest)
			if err != nil {
				return nil, fmt.Errorf("reading %s: %w", d.Digest, err)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				return nil, fmt.Errorf("reading config of %s: %w", d.Digest, err)
			}
			if cp := cf.Platform(); cp != nil {
				p = *cp
			}
		}
		if p.OS == "" || p.OS == "unknown" || p.Architecture == "unknown" {
			continue
		}
		out = append(out, child{platform: p, digest: d.Digest})
	}
	return out, nil
}

func containsPlatform(ps []v1.Platform, p v1.Platform) bool {
	for _, q := range ps {
		if q.OS == p.OS && q.Architecture == p.Architecture && q.Variant == p.Variant && q.OSVersion == p.OSVersion {
			return true
		}
	}
	return false
}

// ScratchUser is the user kiln's scratch base runs as: the static base's
// nonroot user, numeric so that it needs no /etc/passwd. A config's user
// replaces it.
const ScratchUser = staticUser + ":" + staticUser

// scratchImage is an empty OCI image whose config names p and runs as
// ScratchUser, not root.
func scratchImage(ref string, p v1.Platform) (v1.Image, error) {
	if p.OS != "linux" || p.Architecture == "" {
		return nil, &missingError{base: ref, want: p, hasText: "any linux platform"}
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	return mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: p.Architecture,
		OS:           p.OS,
		Variant:      p.Variant,
		Created:      v1.Time{Time: epoch},
		Config:       v1.Config{User: ScratchUser},
		RootFS:       v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{}},
	})
}
