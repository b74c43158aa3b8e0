package request

import (
	"maps"
	"strings"

	"github.com/kilnbuild/kiln/internal/config"
)

// disableOptimizationsFlag is what ko adds to go build for
// --disable-optimizations: no optimizations (-N) and no inlining (-l), in
// every package, so that a debugger can follow the source.
const disableOptimizationsFlag = "-gcflags=all=-N -l"

// overrideImage merges the request's labels, annotations and user into
// every image entry of the config, so that whichever entries ImageFor
// merges for a package, the request's values win over .ko.yaml's (as ko's
// --image-label, --image-annotation and --image-user do).
func (b Build) overrideImage(img config.Image) config.Image {
	if len(b.Labels) > 0 {
		img.Labels = maps.Clone(img.Labels)
		if img.Labels == nil {
			img.Labels = map[string]string{}
		}
		maps.Copy(img.Labels, b.Labels)
	}
	if len(b.Annotations) > 0 {
		img.Annotations = maps.Clone(img.Annotations)
		if img.Annotations == nil {
			img.Annotations = map[string]string{}
		}
		maps.Copy(img.Annotations, b.Annotations)
	}
	if b.User != "" {
		img.User = b.User
	}
	return img
}

// applyOverrides returns cfg with the request's image fields and build
// flags applied, sharing nothing that it changed with cfg; cfg itself when
// the request asks for none.
func (b Build) applyOverrides(cfg *config.Config) *config.Config {
	if len(b.Labels) == 0 && len(b.Annotations) == 0 && b.User == "" && !b.DisableOptimizations && len(b.Ldflags) == 0 {
		return cfg
	}
	c := *cfg
	c.Kiln.Defaults = b.overrideImage(c.Kiln.Defaults)
	if c.Kiln.Builds != nil {
		c.Kiln.Builds = make(map[string]config.Image, len(cfg.Kiln.Builds))
		for k, img := range cfg.Kiln.Builds {
			c.Kiln.Builds[k] = b.overrideImage(img)
		}
	}
	if b.DisableOptimizations {
		// A build's own flags replace the defaults, so both get the flag;
		// it comes last so that it wins over an earlier -gcflags.
		c.DefaultFlags = append(append([]string{}, cfg.DefaultFlags...), disableOptimizationsFlag)
		c.Builds = append([]config.Build{}, cfg.Builds...)
		for i := range c.Builds {
			if len(c.Builds[i].Flags) > 0 {
				c.Builds[i].Flags = append(append([]string{}, c.Builds[i].Flags...), disableOptimizationsFlag)
			}
		}
	}
	if len(b.Ldflags) > 0 {
		c.DefaultLdflags = b.Ldflags
		c.Builds = append([]config.Build{}, c.Builds...)
		for i := range c.Builds {
			c.Builds[i].Ldflags = b.Ldflags
		}
	}
	return &c
}

// badKey is the first key of m that is empty or holds '=', NUL or a line
// break, or whose value holds NUL; ok is false when there is one.
func badKey(m map[string]string) (key string, ok bool) {
	for k, v := range m {
		if k == "" || strings.ContainsAny(k, "=\x00\r\n") || strings.ContainsRune(v, 0) {
			return k, false
		}
	}
	return "", true
}
