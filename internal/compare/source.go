package compare

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/kilnbuild/kiln/internal/checked"
	"github.com/kilnbuild/kiln/internal/imageref"
	"github.com/kilnbuild/kiln/internal/oneline"
	"github.com/kilnbuild/kiln/internal/platform"
	"github.com/kilnbuild/kiln/internal/remoteopt"
	"github.com/kilnbuild/kiln/internal/sign"
	"github.com/kilnbuild/kiln/internal/store"
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

func (o Options) remote(ctx context.Context) []remote.Option {
	return remoteopt.New(ctx, o.Keychain, o.Transport)
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

	// attestation finds the image tagged sha256-<hex>.att next to the
	// image; nil where there is nowhere to look.
	attestation func(ctx context.Context, d v1.Hash) (v1.Image, error)
	cleanup     func() error
	meter       *meter // the reading budgets Open began with
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

// openRemote reads from a registry. ggcr checks what it reads by digest
// (a manifest named by digest, every blob); the manifest's size is asked
// for first, so that one larger than the JSON budget is never fetched.
func openRemote(ctx context.Context, ref string, opt Options, m *meter) (*Source, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("not an image reference: %v", err)
	}
	ropts := opt.remote(ctx)
	if head, err := remote.Head(r, ropts...); err == nil && head.Size > m.lim.JSON {
		return nil, jsonTooLarge("the manifest "+head.Digest.String(), head.Size, m.lim.JSON)
	}
	desc, err := remote.Get(r, ropts...)
	if err != nil {
		return nil, registryError(r, err)
	}
	repo := r.Context().String()
	reg := &sign.RegistryStore{Keychain: opt.Keychain, Transport: opt.Transport}
	s := &Source{Kind: KindRegistry, attestation: func(ctx context.Context, d v1.Hash) (v1.Image, error) {
		return reg.Get(ctx, repo, sign.AttestationTag(d))
	}}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, err
		}
		s.IndexDigest = desc.Digest
		s.Image, s.Digest, err = pickChild(idx, opt.Platform, m)
		return s, err
	}
	if desc.Size > m.lim.JSON {
		return nil, jsonTooLarge("the manifest "+desc.Digest.String(), desc.Size, m.lim.JSON)
	}
	s.Digest = desc.Digest
	s.Image, err = desc.Image()
	return s, err
}

// registryError says what went wrong with a registry in a few words.
func registryError(r name.Reference, err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch terr.StatusCode {
		case http.StatusNotFound:
			return fmt.Errorf("not found in the registry: %v", err)
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("not authorized to read it (log in, or check the docker config's credentials): %v", err)
		}
		return err
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return fmt.Errorf("cannot reach the registry %s: %v", r.Context().RegistryStr(), uerr.Err)
	}
	return err
}

// openLayout finds nm in the OCI layout dir: a ref name as index.json
// records it ("REPO:TAG" as kiln writes, or a bare "TAG" as other tools
// do), a tag alone, REPO@DIGEST, or nothing when the layout holds one image.
// where ends messages that would not otherwise say which layout.
// index.json is read within the JSON budget; everything it names is read
// through package checked.
func openLayout(dir, where, nm, kind string, opt Options, m *meter) (*Source, error) {
	f, err := os.Open(filepath.Join(dir, "index.json"))
	if err != nil {
		return nil, fmt.Errorf("not an OCI image layout (no index.json)%s", where)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > m.lim.JSON {
		return nil, fmt.Errorf("%v%s", jsonTooLarge("index.json", st.Size(), m.lim.JSON), where)
	}
	raw, err := io.ReadAll(io.LimitReader(f, m.lim.JSON+1))
	if err != nil {
		return nil, fmt.Errorf("reading the layout's index.json%s: %v", where, err)
	}
	if int64(len(raw)) > m.lim.JSON {
		return nil, fmt.Errorf("%v%s", jsonTooLarge("index.json", int64(len(raw)), m.lim.JSON), where)
	}
	return openIndex(layout.Path(dir), raw, where, nm, kind, opt, m)
}

// openIndex picks nm among the descriptors of an OCI layout's index.json
// (raw) and reads it from b through package checked.
func openIndex(b checked.Blobs, raw []byte, where, nm, kind string, opt Options, m *meter) (*Source, error) {
	im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("reading the layout's index.json%s: %v", where, err)
	}
	desc, err := findInIndex(im.Manifests, nm, kind == KindStore)
	if err != nil {
		return nil, fmt.Errorf("%v%s", err, where)
	}
	s := &Source{Kind: kind, attestation: func(_ context.Context, d v1.Hash) (v1.Image, error) {
		tag := sign.AttestationTag(d)
		for i := len(im.Manifests) - 1; i >= 0; i-- {
			rn := im.Manifests[i].Annotations[store.RefNameAnnotation]
			if rn == tag || strings.HasSuffix(rn, ":"+tag) {
				return checked.Image(b, im.Manifests[i])
			}
		}
		return nil, sign.ErrNotFound
	}}
	if desc.Size > m.lim.JSON {
		return nil, jsonTooLarge("the manifest "+desc.Digest.String(), desc.Size, m.lim.JSON)
	}
	if desc.MediaType.IsIndex() {
		child, err := checked.Index(b, desc)
		if err != nil {
			return nil, err
		}
		s.IndexDigest = desc.Digest
		s.Image, s.Digest, err = pickChild(child, opt.Platform, m)
		return s, err
	}
	s.Digest = desc.Digest
	s.Image, err = checked.Image(b, desc)
	return s, err
}

// findInIndex picks the descriptor nm names among an index.json's.
func findInIndex(ds []v1.Descriptor, nm string, inStore bool) (v1.Descriptor, error) {
	refName := func(d v1.Descriptor) string { return d.Annotations[store.RefNameAnnotation] }
	if r, dg, ok := strings.Cut(nm, "@"); ok {
		h, err := v1.NewHash(dg)
		if err != nil {
			return v1.Descriptor{}, fmt.Errorf("bad digest %q: %v", dg, err)
		}
		for _, d := range ds {
			if d.Digest == h && (r == "" || !inStore || strings.HasPrefix(refName(d), r+":")) {
				return d, nil
			}
		}
		return v1.Descriptor{}, fmt.Errorf("no image %s", nm)
	}
	var names []string
	var images []v1.Descriptor
	for _, d := range ds {
		rn := refName(d)
		if isSignatureTag(rn) {
			continue
		}
		images = append(images, d)
		if rn != "" {
			names = append(names, rn)
		}
	}
	if nm == "" {
		if len(images) == 1 {
			return images[0], nil
		}
		if len(images) == 0 {
			return v1.Descriptor{}, errors.New("no image")
		}
		return v1.Descriptor{}, fmt.Errorf("%d images (%s): name one after a colon", len(images), listNames(names))
	}
	want := []string{nm}
	if inStore {
		if i := strings.LastIndex(nm, ":"); i < strings.LastIndex(nm, "/") || i < 0 {
			want = []string{nm + ":latest"}
		}
	} else {
		want = append(want, nm+":latest")
	}
	for _, w := range want {
		for i := len(images) - 1; i >= 0; i-- {
			if refName(images[i]) == w {
				return images[i], nil
			}
		}
	}
	if !inStore && !strings.ContainsAny(nm, ":/") {
		var found []v1.Descriptor
		var foundNames []string
		for _, d := range images {
			if strings.HasSuffix(refName(d), ":"+nm) {
				found = append(found, d)
				foundNames = append(foundNames, refName(d))
			}
		}
		if len(found) == 1 {
			return found[0], nil
		}
		if len(found) > 1 {
			return v1.Descriptor{}, fmt.Errorf("tag %s is ambiguous (%s)", nm, listNames(foundNames))
		}
	}
	if len(names) == 0 {
		return v1.Descriptor{}, fmt.Errorf("no image named %s (no image has a name)", want[0])
	}
	return v1.Descriptor{}, fmt.Errorf("no image named %s (it has %s)", want[0], listNames(names))
}

func isSignatureTag(rn string) bool {
	t := rn[strings.LastIndex(rn, ":")+1:]
	return strings.HasPrefix(t, "sha256-") && (strings.HasSuffix(t, ".sig") || strings.HasSuffix(t, ".att") || strings.HasSuffix(t, ".sbom"))
}

func listNames(names []string) string {
	const max = 5
	if len(names) > max {
		return strings.Join(names[:max], ", ") + fmt.Sprintf(" and %d more", len(names)-max)
	}
	return strings.Join(names, ", ")
}

// pickChild returns the image for the wanted platform from an index: the
// asked-for one, else linux/amd64, else linux on the host's architecture,
// else the only image.
func pickChild(idx v1.ImageIndex, want *v1.Platform, m *meter) (v1.Image, v1.Hash, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, v1.Hash{}, err
	}
	var images []v1.Descriptor
	var have []string
	for _, d := range im.Manifests {
		if !d.MediaType.IsImage() {
			continue
		}
		if d.Platform != nil && d.Platform.OS == "unknown" {
			continue // attestation manifests (BuildKit)
		}
		images = append(images, d)
		if d.Platform != nil {
			have = append(have, d.Platform.String())
		}
	}
	find := func(p *v1.Platform) (v1.Descriptor, bool) {
		for _, d := range images {
			if d.Platform != nil && platform.Matches(*d.Platform, *p) {
				return d, true
			}
		}
		return v1.Descriptor{}, false
	}
	var (
		d  v1.Descriptor
		ok bool
	)
	switch {
	case want != nil:
		if d, ok = find(want); !ok {
			return nil, v1.Hash{}, fmt.Errorf("no %s image in the index (it has %s)", want, listNames(have))
		}
	default:
		if d, ok = find(&v1.Platform{OS: "linux", Architecture: "amd64"}); !ok {
			if d, ok = find(&v1.Platform{OS: "linux", Architecture: runtime.GOARCH}); !ok {
				if len(images) != 1 {
					return nil, v1.Hash{}, fmt.Errorf("the index has no linux/amd64 or linux/%s image: choose a platform (it has %s)", runtime.GOARCH, listNames(have))
				}
				d = images[0]
			}
		}
	}
	if d.Size > m.lim.JSON {
		return nil, v1.Hash{}, jsonTooLarge("the manifest "+d.Digest.String(), d.Size, m.lim.JSON)
	}
	img, err := idx.Image(d.Digest)
	return img, d.Digest, err
}

// openOCIArchive reads a tar of an OCI layout (gzip-compressed or not)
// in place, through an archive index (see archive), and everything in it
// through package checked.
func openOCIArchive(file, nm string, opt Options, m *meter) (*Source, error) {
	a, err := openArchive(file, opt.TempDir, m)
	if err != nil {
		return nil, err
	}
	if !a.has("index.json") {
		a.Close()
		return nil, errors.New("not an OCI archive (no index.json inside)")
	}
	raw, err := a.readJSON("index.json")
	if err != nil {
		a.Close()
		return nil, err
	}
	s, err := openIndex(a, raw, "", nm, KindOCIArchive, opt, m)
	if err != nil {
		a.Close()
		return nil, err
	}
	s.cleanup = a.Close
	return s, nil
}

// refError is an error about one reference, in one line; errors.Is and
// errors.As still see the error it wraps.
type refError struct {
	ref string
	err error
}

func (e *refError) Error() string { return e.ref + ": " + oneline.First(e.err.Error()) }
func (e *refError) Unwrap() error { return e.err }
