package compare

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"
)

// Report compares images against the first of them, the baseline.
type Report struct {
	Baseline string  `json:"baseline"`
	Images   []Image `json:"images"`
}

// Image is what one image holds. Sizes are bytes.
type Image struct {
	Ref         string `json:"ref"`
	Kind        string `json:"kind"`
	Digest      string `json:"digest"`
	IndexDigest string `json:"indexDigest,omitempty"`
	Platform    string `json:"platform,omitempty"`
	// CompressedSize is the sum of the layer blobs as the manifest gives
	// them: what a pull downloads, less the config and the manifest.
	CompressedSize int64 `json:"compressedSize"`
	// UncompressedSize is the sum of the layers' uncompressed tar streams.
	UncompressedSize int64 `json:"uncompressedSize"`
	ConfigSize       int64 `json:"configSize"`
	// FileBytes is the size of the regular files left in the final
	// filesystem, after whiteouts.
	FileBytes int64 `json:"fileBytes"`
	// Files counts regular files and hard links in the final filesystem;
	// Others counts devices, fifos and the like.
	Files         int        `json:"files"`
	Dirs          int        `json:"dirs"`
	Symlinks      int        `json:"symlinks"`
	Others        int        `json:"others"`
	Layers        []Layer    `json:"layers"`
	LargestFiles  []File     `json:"largestFiles"`
	Surface       Surface    `json:"attackSurface"`
	Config        Config     `json:"config"`
	Packages      []Package  `json:"packages"`
	PackageSource string     `json:"packageSource"`
	GoBinaries    []GoBinary `json:"goBinaries"`
	SBOM          *SBOM      `json:"sbom,omitempty"`
	// Notes are things the report could not establish, in words.
	Notes []string `json:"notes,omitempty"`
	// Delta compares the image with the baseline; nil for the baseline.
	Delta *Delta `json:"delta,omitempty"`
}

// Where an image's package list came from.
const (
	PackagesFromSBOM  = "sbom"  // an attached SPDX SBOM: an attestation or unsigned
	PackagesFromImage = "image" // dpkg/apk databases and Go build info in the image
)

// Layer is one layer of an image.
type Layer struct {
	Digest           string `json:"digest"`
	MediaType        string `json:"mediaType"`
	CompressedSize   int64  `json:"compressedSize"`
	UncompressedSize int64  `json:"uncompressedSize"`
	Entries          int    `json:"entries"` // tar entries, whiteouts included
	CreatedBy        string `json:"createdBy,omitempty"`
}

// File is a regular file of the final filesystem.
type File struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
	Mode string `json:"mode"` // octal, with setuid/setgid/sticky bits
	UID  int    `json:"uid"`
	GID  int    `json:"gid"`
}

// Surface is what an attacker who gets into a container could use. Paths
// are absolute paths of the final filesystem.
type Surface struct {
	Shells           []string `json:"shells"`
	PackageManagers  []string `json:"packageManagers"`
	PackageDatabases []string `json:"packageDatabases"`
	Compilers        []string `json:"compilers"`
	Setuid           []string `json:"setuid"`
	Setgid           []string `json:"setgid"`
	// WorldWritableDirs lack the sticky bit: anyone may delete or replace
	// anyone's files in them. WorldWritableSticky (like /tmp) have it.
	WorldWritableDirs   []string `json:"worldWritableDirs"`
	WorldWritableSticky []string `json:"worldWritableStickyDirs"`
	User                string   `json:"user"`
	RunsAsRoot          bool     `json:"runsAsRoot"`
}

// Config is the part of the image config that says how it runs.
type Config struct {
	User       string   `json:"user"`
	Entrypoint []string `json:"entrypoint"`
	Cmd        []string `json:"cmd"`
	Env        []string `json:"env"`
	WorkingDir string   `json:"workingDir,omitempty"`
}

// Package is a software package the image contains.
type Package struct {
	Name     string `json:"name"`
	Version  string `json:"version,omitempty"`
	Type     string `json:"type"`               // deb, apk, go-module, go, spdx
	Location string `json:"location,omitempty"` // the database, executable or attestation it was found in
}

// GoBinary is a Go executable found in the image, with its build info.
type GoBinary struct {
	Path      string    `json:"path"`
	GoVersion string    `json:"goVersion"`
	Package   string    `json:"package"`
	Module    string    `json:"module"`
	Version   string    `json:"version"`
	Deps      []Package `json:"deps,omitempty"`
}

// The forms of an SBOM, SBOM.Form.
const (
	SBOMAttestation = "attestation" // a DSSE envelope at sha256-<hex>.att
	SBOMUnsigned    = "unsigned"    // the document as is, at sha256-<hex>.sbom
)

// SBOM describes the SPDX SBOM a package list was read from.
type SBOM struct {
	Tag         string `json:"tag"`
	Subject     string `json:"subject"`
	SPDXVersion string `json:"spdxVersion"`
	Form        string `json:"form"` // SBOMAttestation or SBOMUnsigned
	Packages    int    `json:"packages"`
	// SignatureVerified is always false: compare reads an attestation's
	// DSSE payload without checking its signature.
	SignatureVerified bool   `json:"signatureVerified"`
	Note              string `json:"note"`
}

// Delta is an image against the baseline.
type Delta struct {
	CompressedSize   Change `json:"compressedSize"`
	UncompressedSize Change `json:"uncompressedSize"`
	Files            Change `json:"files"`
	Layers           Change `json:"layers"`
	Packages         Change `json:"packages"`
	// Package names only in this image, only in the baseline, and in both
	// with other versions ("name: old -> new").
	PackagesAdded   []string `json:"packagesAdded"`
	PackagesRemoved []string `json:"packagesRemoved"`
	PackagesChanged []string `json:"packagesChanged"`
}

// Change is a number against the baseline's.
type Change struct {
	Baseline int64 `json:"baseline"`
	Value    int64 `json:"value"`
	Diff     int64 `json:"diff"` // Value − Baseline
	// Percent is Diff as a percentage of Baseline (negative: smaller), and
	// Reduction its opposite; both null when the baseline is 0.
	Percent   *float64 `json:"percent"`
	Reduction *float64 `json:"reductionPercent"`
}

func change(base, v int64) Change {
	c := Change{Baseline: base, Value: v, Diff: v - base}
	if base != 0 {
		p := math.Round(float64(c.Diff)/float64(base)*10000) / 100
		r := -p
		if r == 0 {
			r = 0 // no "-0"
		}
		c.Percent, c.Reduction = &p, &r
	}
	return c
}

// Compare opens and analyses every reference (at most opt.Jobs at once) and
// compares them with the first. Errors are one line and name the reference.
func Compare(ctx context.Context, refs []string, opt Options) (*Report, error) {
	if len(refs) == 0 {
		return nil, errors.New("no images to compare")
	}
	images := make([]Image, len(refs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opt.jobs())
	for i, ref := range refs {
		g.Go(func() error {
			src, err := Open(gctx, ref, opt)
			if err != nil {
				return err
			}
			defer src.Close()
			img, err := Analyze(gctx, src, opt)
			if err != nil {
				return err
			}
			images[i] = *img
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return NewReport(images), nil
}

// NewReport compares images with images[0].
func NewReport(images []Image) *Report {
	r := &Report{Images: images}
	for i := range r.Images {
		r.Images[i].normalize()
	}
	if len(images) == 0 {
		return r
	}
	base := &r.Images[0]
	r.Baseline = base.Ref
	base.Delta = nil
	for i := 1; i < len(r.Images); i++ {
		im := &r.Images[i]
		d := &Delta{
			CompressedSize:   change(base.CompressedSize, im.CompressedSize),
			UncompressedSize: change(base.UncompressedSize, im.UncompressedSize),
			Files:            change(int64(base.Files), int64(im.Files)),
			Layers:           change(int64(len(base.Layers)), int64(len(im.Layers))),
			Packages:         change(int64(len(base.Packages)), int64(len(im.Packages))),
		}
		d.PackagesAdded, d.PackagesRemoved, d.PackagesChanged = diffPackages(base.Packages, im.Packages)
		im.Delta = d
	}
	return r
}

// normalize gives lists as [] rather than null in JSON.
func (im *Image) normalize() {
	for _, l := range []*[]string{&im.Surface.Shells, &im.Surface.PackageManagers, &im.Surface.PackageDatabases,
		&im.Surface.Compilers, &im.Surface.Setuid, &im.Surface.Setgid, &im.Surface.WorldWritableDirs,
		&im.Surface.WorldWritableSticky, &im.Config.Entrypoint, &im.Config.Cmd, &im.Config.Env} {
		if *l == nil {
			*l = []string{}
		}
	}
	if im.Layers == nil {
		im.Layers = []Layer{}
	}
	if im.LargestFiles == nil {
		im.LargestFiles = []File{}
	}
	if im.Packages == nil {
		im.Packages = []Package{}
	}
	if im.GoBinaries == nil {
		im.GoBinaries = []GoBinary{}
	}
}

// diffPackages compares package lists by name.
func diffPackages(base, other []Package) (added, removed, changed []string) {
	versions := func(ps []Package) map[string]string {
		vs := map[string][]string{}
		for _, p := range ps {
			vs[p.Name] = append(vs[p.Name], p.Version)
		}
		out := make(map[string]string, len(vs))
		for n, v := range vs {
			sort.Strings(v)
			out[n] = strings.Join(v, ",")
		}
		return out
	}
	b, o := versions(base), versions(other)
	added, removed, changed = []string{}, []string{}, []string{}
	for n, v := range o {
		bv, ok := b[n]
		switch {
		case !ok:
			added = append(added, n)
		case bv != v:
			changed = append(changed, fmt.Sprintf("%s: %s -> %s", n, bv, v))
		}
	}
	for n := range b {
		if _, ok := o[n]; !ok {
			removed = append(removed, n)
		}
	}
	sort.Strings(added)
	sort.Strings(removed)
	sort.Strings(changed)
	return added, removed, changed
}

// Budget is a CI size budget for every image but the baseline.
type Budget struct {
	// MaxSize is the most compressed bytes an image may have; 0: no limit.
	MaxSize int64
	// MaxGrowth is the most an image's compressed size may exceed the
	// baseline's, in percent; nil: no limit.
	MaxGrowth *float64
}

// ErrBudget is what a *BudgetError matches with errors.Is.
var ErrBudget = errors.New("size budget exceeded")

// Violation is one image over one budget.
type Violation struct {
	Image  string `json:"image"`
	Budget string `json:"budget"` // "max-size" or "max-growth"
	Got    string `json:"got"`
	Limit  string `json:"limit"`
}

// BudgetError lists every budget an image exceeds; its message is one line.
type BudgetError struct {
	Violations []Violation
}

func (e *BudgetError) Error() string {
	parts := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		parts[i] = fmt.Sprintf("%s is %s, over the %s budget of %s", v.Image, v.Got, v.Budget, v.Limit)
	}
	return ErrBudget.Error() + ": " + strings.Join(parts, "; ")
}

// Is makes errors.Is(err, ErrBudget) true.
func (e *BudgetError) Is(target error) bool { return target == ErrBudget }

// CheckBudget returns a *BudgetError when an image other than the baseline
// exceeds b, and nil otherwise.
func (r *Report) CheckBudget(b Budget) error {
	var vs []Violation
	for i := 1; i < len(r.Images); i++ {
		im := r.Images[i]
		if b.MaxSize > 0 && im.CompressedSize > b.MaxSize {
			vs = append(vs, Violation{Image: im.Ref, Budget: "max-size",
				Got: FormatSize(im.CompressedSize) + " compressed", Limit: FormatSize(b.MaxSize)})
		}
		if b.MaxGrowth != nil && im.Delta != nil {
			c := im.Delta.CompressedSize
			over := c.Percent != nil && *c.Percent > *b.MaxGrowth
			if c.Percent == nil && c.Diff > 0 {
				over = true // grew from nothing
			}
			if over {
				got := FormatSize(im.CompressedSize) + " compressed, " + formatPercent(c) + " against the baseline"
				vs = append(vs, Violation{Image: im.Ref, Budget: "max-growth", Got: got, Limit: strconv.FormatFloat(*b.MaxGrowth, 'f', -1, 64) + "%"})
			}
		}
	}
	if len(vs) == 0 {
		return nil
	}
	return &BudgetError{Violations: vs}
}

// ParseSize reads a size: a number of bytes with an optional unit, decimal
// (B, kB or KB, MB, GB, TB) or binary (KiB, MiB, GiB, TiB): "10MB",
// "1.5 GiB", "2048".
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := len(t)
	for i > 0 && (t[i-1] < '0' || t[i-1] > '9') && t[i-1] != '.' {
		i--
	}
	num, unit := strings.TrimSpace(t[:i]), strings.ToLower(strings.TrimSpace(t[i:]))
	mult := map[string]float64{
		"": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
		"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
	}[unit]
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || mult == 0 || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) || f*mult > math.MaxInt64/2 {
		return 0, fmt.Errorf("invalid size %q: want a number of bytes with an optional unit, as 10MB or 512KiB", s)
	}
	return int64(math.Round(f * mult)), nil
}

// ParsePercent reads a percentage, with or without "%": "10", "2.5%".
func ParsePercent(s string) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "%")), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("invalid percentage %q: want a number, as 10 or 2.5%%", s)
	}
	return f, nil
}
