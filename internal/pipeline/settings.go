package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kilnbuild/kiln/internal/config"
	"github.com/kilnbuild/kiln/internal/gobuild"
	"github.com/kilnbuild/kiln/internal/image"
	"github.com/kilnbuild/kiln/internal/layer"
	"github.com/kilnbuild/kiln/internal/platform"
	"github.com/kilnbuild/kiln/internal/publish"
	"github.com/kilnbuild/kiln/internal/vcs"
)

// compression is the image's layer compression, with auto resolved for
// the destination (publish.Nearby).
func (r *buildRun) compression(s config.Image) (layer.Compression, error) {
	if r.opts.Compress != nil {
		return r.opts.Compress.Resolve(publish.Nearby(r.opts.Publisher)), nil
	}
	alg, err := layer.ParseAlgorithm(s.Compression)
	if err != nil {
		return layer.Compression{}, err
	}
	c := layer.Compression{Algorithm: alg, Level: s.CompressionLevel}
	return c.Resolve(publish.Nearby(r.opts.Publisher)), nil
}

// settings is how one package is compiled: flags and ldflags expanded.
type settings struct {
	flags, ldflags, env []string
	caps                []int // from the config alone
}

// sameCompile reports whether s and o compile the same binary.
func (s settings) sameCompile(o settings) bool {
	return slices.Equal(s.flags, o.flags) && slices.Equal(s.ldflags, o.ldflags) && slices.Equal(s.env, o.env)
}

// buildSettings merges defaults and the build entry, expands templates
// with what git answers for the fields they name, and checks the result
// against the builder's rule (gobuild's rule.go), so a refusal comes before
// any compile and covers what templates expand to.
func (r *buildRun) buildSettings(pkg gobuild.Package, b config.Build, git func(fields ...string) vcs.Git) (settings, error) {
	c := r.opts.Config
	var s settings
	flags := c.DefaultFlags
	if len(b.Flags) > 0 {
		flags = b.Flags
	}
	// kiln's default strips symbols and DWARF (ko adds no ldflags); a
	// debugger needs them: --debug, or flags that disable optimizations
	// (--disable-optimizations), keep them.
	ldflags := []string{"-s", "-w"}
	if r.opts.Debugger != nil || disablesOptimizations(flags) {
		ldflags = nil
	}
	if len(c.DefaultLdflags) > 0 {
		ldflags = c.DefaultLdflags
	}
	if len(b.Ldflags) > 0 {
		ldflags = b.Ldflags
	}
	s.env = append(append([]string{}, c.DefaultEnv...), b.Env...)
	var g vcs.Git
	if fields, uses := gitFields(append(append([]string{}, flags...), ldflags...)); uses {
		g = git(fields...)
	}
	data := gobuild.NewTemplateData(r.opts.Env, g, r.opts.Created)
	var err error
	if s.flags, err = gobuild.Expand(flags, data); err != nil {
		return settings{}, err
	}
	if s.ldflags, err = gobuild.Expand(ldflags, data); err != nil {
		return settings{}, err
	}
	if err := r.opts.Builder.Check(gobuild.Target{Package: pkg, Env: s.env, Flags: s.flags, Ldflags: s.ldflags}); err != nil {
		return settings{}, fmt.Errorf("%s: %w", pkg.ImportPath, err)
	}
	set, err := config.ParseCapabilities(b.LinuxCapabilities)
	if err != nil {
		return settings{}, err
	}
	for n := 0; n < 64; n++ {
		if set.Permitted&(1<<n) != 0 {
			s.caps = append(s.caps, n)
		}
	}
	return s, nil
}

// disablesOptimizations reports whether flags pass the compiler -N, as
// --disable-optimizations does: -gcflags=[pattern=]args or -gcflags args.
func disablesOptimizations(flags []string) bool {
	for i, f := range flags {
		v, ok := strings.CutPrefix(f, "-gcflags=")
		if !ok && (f == "-gcflags" || f == "--gcflags") && i+1 < len(flags) {
			v, ok = flags[i+1], true
		}
		if !ok {
			v, ok = strings.CutPrefix(f, "--gcflags=")
		}
		if !ok {
			continue
		}
		if pat, args, found := strings.Cut(v, "="); found && !strings.HasPrefix(pat, "-") {
			v = args
		}
		if slices.Contains(strings.Fields(v), "-N") {
			return true
		}
	}
	return false
}

func (r *buildRun) extraFiles(s config.Image) ([]image.File, error) {
	dir := r.opts.Config.Dir
	if dir == "" {
		dir = r.opts.Dir
	}
	files := make([]image.File, 0, len(s.Files))
	for _, f := range s.Files {
		mode, err := f.FileMode()
		if err != nil {
			return nil, err
		}
		src := f.Source
		if !filepath.IsAbs(src) {
			src = filepath.Join(dir, src)
		}
		files = append(files, image.File{Source: src, Path: f.Path, Mode: mode})
	}
	return files, nil
}

// configTemplates are every flag and ldflag of the config, templates or not.
func configTemplates(c *config.Config) []string {
	if c == nil {
		return nil
	}
	t := append(append([]string{}, c.DefaultFlags...), c.DefaultLdflags...)
	for _, b := range c.Builds {
		t = append(append(t, b.Flags...), b.Ldflags...)
	}
	return t
}

// gitFieldRE finds {{.Git.Field}} in a template.
var gitFieldRE = regexp.MustCompile(`\.Git\.([A-Za-z]+)`)

// gitFields reports whether templates ask for git data and which fields,
// so a build waits only for the git commands it needs (none when it uses
// none). A use other than .Git.Field yields no fields: wait for all.
func gitFields(templates []string) (fields []string, uses bool) {
	for _, t := range templates {
		n := strings.Count(t, ".Git")
		if n == 0 {
			continue
		}
		uses = true
		m := gitFieldRE.FindAllStringSubmatch(t, -1)
		if len(m) != n {
			return nil, true
		}
		for _, f := range m {
			fields = append(fields, f[1])
		}
	}
	return fields, uses
}

func imageBytes(img v1.Image) (int64, error) {
	layers, err := img.Layers()
	if err != nil {
		return 0, err
	}
	var total int64
	for _, l := range layers {
		n, err := l.Size()
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// binaryPath is where a platform's binary is linked. With a cache it is a
// stable path per package, platform and settings, so `go build` finds its
// earlier output up to date and does not link again; a lock keeps two kiln
// processes from writing it at once (bincache.go).
func (r *buildRun) binaryPath(idx, i int, binName string, pkg gobuild.Package, p v1.Platform, env, flags, ldflags []string) (string, func(), error) {
	if r.opts.CacheDir == "" {
		bin := filepath.Join(r.tmp, fmt.Sprintf("bin-%d-%d", idx, i), binName)
		return bin, func() {}, os.MkdirAll(filepath.Dir(bin), 0o755)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%q\x00%q\x00%q", pkg.Dir, pkg.ImportPath, platform.String(p), env, flags, ldflags)
	dir := filepath.Join(r.opts.CacheDir, "bin", hex.EncodeToString(h.Sum(nil))[:32])
	unlock, err := lockBinary(dir)
	if err != nil {
		return "", nil, err
	}
	return filepath.Join(dir, binName), unlock, nil
}
