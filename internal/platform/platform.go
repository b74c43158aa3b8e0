package platform

import (
	"fmt"
	"runtime"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Spec is what the user asked for: explicit platforms, every platform the
// base offers (All), or the host's own architecture.
type Spec struct {
	All       bool
	Platforms []v1.Platform
}

// Supported lists the linux platforms kiln can cross-compile for.
var Supported = []v1.Platform{
	{OS: "linux", Architecture: "amd64"},
	{OS: "linux", Architecture: "arm64"},
	{OS: "linux", Architecture: "arm", Variant: "v7"},
	{OS: "linux", Architecture: "arm", Variant: "v6"},
	{OS: "linux", Architecture: "386"},
	{OS: "linux", Architecture: "ppc64le"},
	{OS: "linux", Architecture: "s390x"},
	{OS: "linux", Architecture: "riscv64"},
}

// Host is linux on the machine's own architecture.
func Host() v1.Platform {
	p := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if p.Architecture == "arm" {
		p.Variant = "v7"
	}
	return p
}

// Parse reads a list such as "linux/amd64,linux/arm/v7", or "all", or "local".
func Parse(items []string) (Spec, error) {
	var spec Spec
	for _, item := range items {
		for _, s := range strings.Split(item, ",") {
			s = strings.TrimSpace(s)
			switch s {
			case "":
				continue
			case "all":
				spec.All = true
				continue
			case "local":
				spec.Platforms = appendUnique(spec.Platforms, Host())
				continue
			}
			p, err := parseOne(s)
			if err != nil {
				return Spec{}, err
			}
			spec.Platforms = appendUnique(spec.Platforms, p)
		}
	}
	if spec.All && len(spec.Platforms) > 0 {
		return Spec{}, fmt.Errorf("platform \"all\" cannot be combined with other platforms")
	}
	return spec, nil
}

func parseOne(s string) (v1.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return v1.Platform{}, fmt.Errorf("unknown platform %q: use os/arch[/variant], e.g. linux/amd64, or all, or local", s)
	}
	p := v1.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	if p.OS != "linux" {
		return v1.Platform{}, fmt.Errorf("unknown platform %q: kiln builds linux images only", s)
	}
	if p.Architecture == "arm" && p.Variant == "" {
		p.Variant = "v7"
	}
	if p.Architecture == "amd64" && p.Variant != "" {
		if _, err := GOAMD64(p); err != nil {
			return v1.Platform{}, err
		}
		return p, nil
	}
	if p.Architecture == "arm64" && p.Variant == "v8" {
		p.Variant = ""
	}
	for _, s := range Supported {
		if s.Equals(p) {
			return p, nil
		}
	}
	return v1.Platform{}, fmt.Errorf("unknown platform %q: kiln supports %s", s, List(Supported))
}

// GOAMD64 maps an amd64 variant (v1…v4) to its GOAMD64 value.
func GOAMD64(p v1.Platform) (string, error) {
	switch p.Variant {
	case "":
		return "", nil
	case "v1", "v2", "v3", "v4":
		return p.Variant, nil
	}
	return "", fmt.Errorf("unknown platform \"linux/amd64/%s\": amd64 variants are v1 to v4", p.Variant)
}

// GoEnv is the GOOS/GOARCH/GOARM/GOAMD64 environment that targets p.
func GoEnv(p v1.Platform) []string {
	env := []string{"GOOS=" + p.OS, "GOARCH=" + p.Architecture}
	switch p.Architecture {
	case "arm":
		env = append(env, "GOARM="+strings.TrimPrefix(p.Variant, "v"))
	case "amd64":
		if p.Variant != "" {
			env = append(env, "GOAMD64="+p.Variant)
		}
	}
	return env
}

// String formats p as os/arch[/variant].
func String(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// List joins platforms with ", ".
func List(ps []v1.Platform) string {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = String(p)
	}
	return strings.Join(names, ", ")
}

// Buildable keeps the platforms of ps that kiln can compile for, in order.
func Buildable(ps []v1.Platform) []v1.Platform {
	var out []v1.Platform
	for _, p := range ps {
		if p.OS != "linux" {
			continue
		}
		if slices.ContainsFunc(Supported, func(s v1.Platform) bool { return s.Equals(p) }) ||
			(p.Architecture == "arm64" && p.Variant == "v8") {
			out = appendUnique(out, p)
		}
	}
	return out
}

func appendUnique(ps []v1.Platform, p v1.Platform) []v1.Platform {
	for _, q := range ps {
		if q.Equals(p) {
			return ps
		}
	}
	return append(ps, p)
}

// Matches reports whether have serves a request for want: the same os and
// architecture, and the same variant unless want names none. For arm64, no
// variant and "v8" are the same (an arm64 image is v8 unless it says more).
func Matches(have, want v1.Platform) bool {
	if have.OS != want.OS || have.Architecture != want.Architecture {
		return false
	}
	if want.Variant == "" || have.Variant == want.Variant {
		return true
	}
	return have.Architecture == "arm64" && arm64Variant(have.Variant) == arm64Variant(want.Variant)
}

func arm64Variant(v string) string {
	if v == "" {
		return "v8"
	}
	return v
}
