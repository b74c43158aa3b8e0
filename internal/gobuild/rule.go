package gobuild

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/kilnbuild/kiln/internal/platform"
)

// The rule: a build runs the Go toolchain and nothing else.
//
// Every go command kiln runs (list, env, build) gets the environment that
// environ makes, and nothing of the caller's goes around it:
//
//   - GOENV=off: the go command reads no go env file. kiln reads the file
//     itself (the one GOENV names, else go env -w's) and treats it as the
//     go command would, as if it were part of the caller's environment.
//   - From the caller's environment (and the file), only the variables in
//     passEnv and passGoEnv: where the toolchain, caches and modules are and
//     how the network is reached. Everything else is dropped, CC, CXX,
//     CGO_* and GOCACHEPROG among them. CGO_ENABLED other than 0 is refused.
//   - From a Target's Env (a .ko.yaml's builds[].env and defaultEnv), only
//     the variables in targetEnv; anything else is refused.
//   - CGO_ENABLED=0 always, and GOFLAGS set by kiln: the user's GOFLAGS
//     (the Target's, else the caller's) parsed, refused if it holds a flag
//     kiln refuses, and passed on with only the flags go build has.
//   - Build flags, ldflags, gcflags and asmflags are checked against
//     allow-lists (flags.go): no -toolexec, no external linker (-linkmode=
//     external, -extld, -extldflags), no gccgo or sanitizers, no output
//     elsewhere, and -overlay, -modfile, -pkgdir and -pgo only inside the
//     package's module.
//
// A program that needs cgo gets ErrCgo, which names the way out: a
// Dockerfile build.

// Refusals, classified with errors.Is: every one is ErrNotAllowed.
var (
	ErrNotAllowed = errors.New("not allowed")
	ErrToolexec   = fmt.Errorf("-toolexec is %w", ErrNotAllowed)
	ErrCgo        = fmt.Errorf("cgo is %w", ErrNotAllowed)
)

// cgoWayOut ends every ErrCgo refusal.
const cgoWayOut = "kiln links static Go binaries without a C toolchain; build a cgo program with a Dockerfile instead (see Dockerfile.reference)"

// passEnv are the caller's variables the go command gets: where things
// are, how the network is reached, and the Go runtime's own knobs.
var passEnv = setOf(
	"HOME", "PATH", "TMPDIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME",
	"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
	"SSL_CERT_FILE", "SSL_CERT_DIR", "NETRC",
	"GODEBUG", "GOMAXPROCS", "GOGC", "GOMEMLIMIT",
)

// passGoEnv are the go command's settings the caller's environment or the
// go env file may give: the toolchain, caches, module fetching, and the
// settings a binary records in its build info.
var passGoEnv = setOf(
	"GOROOT", "GOPATH", "GOCACHE", "GOMODCACHE", "GOTMPDIR", "GOTOOLCHAIN",
	"GOPROXY", "GONOPROXY", "GOPRIVATE", "GOSUMDB", "GONOSUMDB", "GONOSUMCHECK", "GOINSECURE", "GOVCS",
	"GOEXPERIMENT", "GOAMD64", "GOARM", "GOARM64", "GO386", "GOMIPS", "GOMIPS64", "GOPPC64", "GORISCV64",
)

// targetEnv are the variables a Target's Env may set, besides GOFLAGS and
// CGO_ENABLED=0, which kiln sets itself.
var targetEnv = setOf(
	"GOEXPERIMENT", "GOAMD64", "GOARM", "GOARM64", "GO386", "GOMIPS", "GOMIPS64", "GOPPC64", "GORISCV64",
	"GOTOOLCHAIN", "GOPROXY", "GONOPROXY", "GOPRIVATE", "GOSUMDB", "GONOSUMDB", "GONOSUMCHECK", "GOINSECURE", "GOVCS",
)

// targetEnvList is targetEnv for messages.
var targetEnvList = "GOFLAGS, CGO_ENABLED=0, " + strings.Join(sortedKeys(targetEnv), ", ")

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// ambient is what the caller's environment and go env file give every go
// command, checked once per Builder.
type ambient struct {
	env     []string // allowed KEY=VALUE, sorted
	goflags []arg    // the user's GOFLAGS, checked; flags go build lacks dropped
	err     error
}

func (b *Builder) ambient() *ambient {
	b.once.Do(func() { b.amb = readAmbient(b.Env) })
	return &b.amb
}

// readAmbient applies the rule to the caller's environment and go env file.
func readAmbient(env []string) ambient {
	vals := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vals[k] = v
		}
	}
	from := map[string]string{} // where each go setting came from, for messages
	settings := map[string]string{}
	if file := envFile(vals); file != "" {
		for k, v := range readEnvFile(file) {
			settings[k], from[k] = v, "go env file "+file
		}
	}
	for k, v := range vals {
		if v != "" { // as for go: an empty variable leaves the file's setting
			settings[k], from[k] = v, "the environment"
		}
	}
	var a ambient
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		v := settings[k]
		switch {
		case k == "CGO_ENABLED":
			if v != "0" {
				a.err = fmt.Errorf("CGO_ENABLED=%s in %s: %w: %s", v, from[k], ErrCgo, cgoWayOut)
				return a
			}
		case k == "GOFLAGS":
			if a.goflags, a.err = parseGOFLAGS(v, "GOFLAGS in "+from[k]); a.err != nil {
				return a
			}
		case passGoEnv[k] || passEnv[k] && from[k] == "the environment":
			a.env = append(a.env, k+"="+v)
		}
	}
	slices.Sort(a.env)
	return a
}

// envFile is the go env file the go command would read, "" for none.
func envFile(vals map[string]string) string {
	if f, ok := vals["GOENV"]; ok && f != "" {
		if f == "off" {
			return ""
		}
		return f
	}
	var dir string
	switch runtime.GOOS {
	case "windows":
		dir = vals["AppData"]
	case "darwin", "ios":
		if vals["HOME"] != "" {
			dir = vals["HOME"] + "/Library/Application Support"
		}
	default:
		if dir = vals["XDG_CONFIG_HOME"]; dir == "" && vals["HOME"] != "" {
			dir = vals["HOME"] + "/.config"
		}
	}
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, "go", "env")
}

// readEnvFile reads a go env file as the go command does: KEY=VALUE lines,
// anything else skipped; a file that cannot be read is no settings.
func readEnvFile(file string) map[string]string {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	m := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" || k[0] < 'A' || k[0] > 'Z' {
			continue
		}
		m[k] = v
	}
	return m
}

// environ is the whole environment of a go command run in dir, for the
// Target t (nil for go list and go env), after applying the rule to
// everything that reaches it. root is the module's directory ("" to find
// it from dir).
func (b *Builder) environ(dir, root string, t *Target) ([]string, error) {
	a := b.ambient()
	if a.err != nil {
		return nil, a.err
	}
	goflags := a.goflags
	var kept []string
	if t != nil {
		flags, err := parseArgs(t.Flags, buildFlags, "build flag", false)
		if err != nil {
			return nil, err
		}
		if _, err := parseTool(strings.Join(t.Ldflags, " "), linkFlags, "ldflag"); err != nil {
			return nil, err
		}
		for _, kv := range t.Env {
			k, v, _ := strings.Cut(kv, "=")
			switch {
			case k == "GOFLAGS":
				var err error
				if goflags, err = parseGOFLAGS(v, "GOFLAGS in the build env"); err != nil {
					return nil, err
				}
			case k == "CGO_ENABLED":
				if v != "0" {
					return nil, fmt.Errorf("build env %s: %w: %s", kv, ErrCgo, cgoWayOut)
				}
			case targetEnv[k]:
				kept = append(kept, kv)
			case k == "CC" || k == "CXX" || k == "FC" || k == "GCCGO" || k == "PKG_CONFIG" || strings.HasPrefix(k, "CGO_"):
				return nil, fmt.Errorf("build env %s: %w: %s", kv, ErrCgo, cgoWayOut)
			case k == "GOOS" || k == "GOARCH":
				return nil, fmt.Errorf("build env %s: %w: kiln sets it from the platform; use --platform or defaultPlatforms", kv, ErrNotAllowed)
			default:
				return nil, fmt.Errorf("build env %s: %w: go build gets only %s from a build's env; remove it", kv, ErrNotAllowed, targetEnvList)
			}
		}
		if err := checkPaths(flags, dir, root); err != nil {
			return nil, err
		}
	}
	if err := checkPaths(goflags, dir, root); err != nil {
		return nil, err
	}
	gf, err := joinGOFLAGS(goflags)
	if err != nil {
		return nil, err
	}
	env := make([]string, 0, len(a.env)+len(kept)+8)
	env = append(env, a.env...)
	env = append(env, kept...)
	env = append(env, "GOENV=off", "GOFLAGS="+gf, "CGO_ENABLED=0")
	if t != nil {
		env = append(env, platform.GoEnv(t.Platform)...)
	}
	return env, nil
}

// GOFLAGS is the GOFLAGS the caller's environment (or go env file) gives
// every build, as kiln passes it on; "" when there is none or it is refused.
func (b *Builder) GOFLAGS() string {
	a := b.ambient()
	if a.err != nil {
		return ""
	}
	s, _ := joinGOFLAGS(a.goflags)
	return s
}

// Check reports whether Build would refuse t, without running anything. A
// Target with only Package.Dir set checks the caller's environment alone.
func (b *Builder) Check(t Target) error {
	_, err := b.environ(t.Package.Dir, t.Package.ModuleDir, &t)
	return err
}
