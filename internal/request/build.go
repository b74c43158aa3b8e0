package request

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/kilnbuild/kiln/internal/delve"
	"github.com/kilnbuild/kiln/internal/layer"
	"github.com/kilnbuild/kiln/internal/pipeline"
	"github.com/kilnbuild/kiln/internal/platform"
	"github.com/kilnbuild/kiln/internal/sbom"
	"github.com/kilnbuild/kiln/internal/sign"
)

// Build is what to build, as a client may say it: kiln build's flags, or
// the build service's JSON (decoded with DisallowUnknownFields). Where it
// is published and the signing key are the caller's (see Env).
type Build struct {
	// Packages are Go main packages: import paths or ./dir paths.
	Packages []string `json:"packages"`
	// Platforms as kiln build --platform takes them (linux/amd64, all,
	// local); none means .ko.yaml's defaultPlatforms, else the host's.
	Platforms []string `json:"platforms,omitempty"`
	// Base replaces .ko.yaml's bases for every package: static, scratch,
	// REF or oci:DIR[:TAG]; "" keeps the config's.
	Base string `json:"base,omitempty"`
	// Tags to publish; nil means "latest".
	Tags []string `json:"tags,omitempty"`
	// Naming of the repositories, as ko names them; at most one is set.
	Bare                bool `json:"bare,omitempty"`
	BaseImportPaths     bool `json:"baseImportPaths,omitempty"`
	PreserveImportPaths bool `json:"preserveImportPaths,omitempty"`
	// Compression (gzip, zstd, none, auto) and level; "" and 0 keep
	// .ko.yaml's. Auto is resolved by the destination (publish.Nearby).
	Compression      string `json:"compression,omitempty"`
	CompressionLevel int    `json:"compressionLevel,omitempty"`
	// Sign signs every image and attaches a signed SBOM and provenance
	// (also on when .ko.yaml's kiln.defaults.sign is).
	Sign bool `json:"sign,omitempty"`
	// SignatureFormat is tags (the default) or referrers.
	SignatureFormat string `json:"signatureFormat,omitempty"`
	// Jobs is how many compiles run at once; 0 means one.
	Jobs int `json:"jobs,omitempty"`
	// Labels, Annotations and User go into every image's config (labels,
	// user) and manifest (annotations), over .ko.yaml's values, as ko's
	// --image-label, --image-annotation and --image-user.
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	User        string            `json:"user,omitempty"`
	// DisableOptimizations compiles with -gcflags=all=-N -l, as ko's
	// --disable-optimizations, for a debugger.
	DisableOptimizations bool `json:"disableOptimizations,omitempty"`
	// Ldflags, when set, replace every ldflags of .ko.yaml (its defaults
	// and each build's), as ko's --ldflags; templates and the build rule
	// apply as to .ko.yaml's.
	Ldflags []string `json:"ldflags,omitempty"`
	// SBOM is the unsigned SBOM attached to every image pushed, as ko's
	// --sbom: spdx, cyclonedx, go.version-m or none ("" is none).
	SBOM string `json:"sbom,omitempty"`
	// Debug puts Delve into every image and starts the program under it
	// (listening on port 40000), compiled with -gcflags=all=-N -l and
	// without the default -s -w, as ko's --debug; platforms Delve does not
	// run on are built without it.
	Debug bool `json:"debug,omitempty"`
}

// ErrInvalid is what every error of Validate is (errors.Is), so that a
// service can answer it as the client's mistake.
var ErrInvalid = errors.New("invalid build request")

// Validate checks every field, and says in one line what is wrong with
// the first bad one.
func (b Build) Validate() error {
	if len(b.Packages) == 0 {
		return invalid("no packages given: name one or more main packages, e.g. ./cmd/server")
	}
	for _, p := range b.Packages {
		if strings.TrimSpace(p) == "" || strings.ContainsAny(p, "\x00\r\n") {
			return invalid("package %q is not an import path or a ./dir path", p)
		}
	}
	spec, err := platform.Parse(b.Platforms)
	if err != nil {
		return invalidError{err}
	}
	if b.Debug && len(spec.Platforms) > 0 && !slices.ContainsFunc(spec.Platforms, delve.Supports) {
		return invalid("--debug: Delve runs on linux/amd64 and linux/arm64 only, and no platform asked for is one: add one")
	}
	if _, err := sbom.ParseKind(b.SBOM); err != nil {
		return invalidError{err}
	}
	if strings.ContainsAny(b.Base, "\x00\r\n\t ") {
		return invalid("base %q is not an image reference: use static, scratch, REF or oci:DIR[:TAG]", b.Base)
	}
	for _, t := range b.Tags {
		if _, err := name.NewTag(pipeline.LocalRepo + "/tag:" + t); err != nil {
			return invalid("tag %q is not a valid tag: use at most 128 letters, digits, _ . and -", t)
		}
	}
	if n := countTrue(b.Bare, b.BaseImportPaths, b.PreserveImportPaths); n > 1 {
		return invalid("--bare, --base-import-paths and --preserve-import-paths exclude each other: pick one")
	}
	if _, err := b.compression(); err != nil {
		return invalidError{err}
	}
	if _, err := sign.ParseFormat(b.SignatureFormat); err != nil {
		return invalidError{err}
	}
	if k, ok := badKey(b.Labels); !ok {
		return invalid("label %q: give labels as KEY=VALUE with a non-empty KEY", k)
	}
	if k, ok := badKey(b.Annotations); !ok {
		return invalid("annotation %q: give annotations as KEY=VALUE with a non-empty KEY", k)
	}
	if strings.ContainsAny(b.User, "\x00\r\n") {
		return invalid("user %q is not a user: give NAME, UID or UID:GID", b.User)
	}
	if b.Jobs < 0 {
		return invalid("jobs %d: give the number of compiles to run at once, 1 or more (0: one)", b.Jobs)
	}
	return nil
}

func invalid(format string, args ...any) error {
	return invalidError{fmt.Errorf(format, args...)}
}

// invalidError is a bad field: its message is the field's, and it is
// ErrInvalid (a client's mistake, not the build's).
type invalidError struct{ err error }

func (e invalidError) Error() string        { return e.err.Error() }
func (e invalidError) Unwrap() error        { return e.err }
func (e invalidError) Is(target error) bool { return target == ErrInvalid }

func countTrue(bs ...bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// compression is the requested compression, nil when the config decides.
func (b Build) compression() (*layer.Compression, error) {
	if b.Compression == "" && b.CompressionLevel == 0 {
		return nil, nil
	}
	alg, err := layer.ParseAlgorithm(b.Compression)
	if err != nil {
		return nil, err
	}
	c := &layer.Compression{Algorithm: alg, Level: b.CompressionLevel}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// naming is the repository naming under repo.
func (b Build) naming(repo string) pipeline.Naming {
	return pipeline.Naming{Repo: repo, Bare: b.Bare, BaseImportPaths: b.BaseImportPaths, PreserveImportPaths: b.PreserveImportPaths}
}

// tags are the tags to publish.
func (b Build) tags() []string {
	if b.Tags == nil {
		return []string{"latest"}
	}
	return b.Tags
}
