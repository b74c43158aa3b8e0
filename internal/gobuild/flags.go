package gobuild

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// arg is one flag as written, once read.
type arg struct {
	name, value string
	text        string // as written: how it is passed on, and named in errors
	what        string // where it was written, for errors
	spec        flagSpec
}

// flagSpec is what kiln allows of one flag.
type flagSpec struct {
	value bool                 // takes a value: -f v or -f=v (else -f or -f=bool)
	check func(v string) error // refuses a value; nil: any value
	path  bool                 // the value is a file that must be inside the module
	why   error                // non-nil: the flag is refused, with this reason
}

var (
	boolFlag  = flagSpec{}
	valueFlag = flagSpec{value: true}
	pathFlag  = flagSpec{value: true, path: true}
)

func refused(value bool, sentinel error, reason string) flagSpec {
	return flagSpec{value: value, why: fmt.Errorf("%w: %s", sentinel, reason)}
}

// oneOf allows only the values ok of the flag name.
func oneOf(name string, ok ...string) func(string) error {
	return func(v string) error {
		if slices.Contains(ok, v) {
			return nil
		}
		return fmt.Errorf("%w: kiln allows only %s=%s", ErrNotAllowed, name, strings.Join(ok, " or "+name+"="))
	}
}

// buildFlags are go build's flags as kiln allows them. In GOFLAGS, a flag
// go build lacks is dropped, as go build itself ignores it there.
var buildFlags map[string]flagSpec

// linkFlags, compileFlags and asmFlags are what -ldflags, -gcflags and
// -asmflags may hold.
var linkFlags, compileFlags, asmFlags map[string]flagSpec

func init() {
	cgo := func(value bool, why string) flagSpec { return refused(value, ErrCgo, why+"; "+cgoWayOut) }
	buildFlags = map[string]flagSpec{
		"a": boolFlag, "v": boolFlag, "x": boolFlag, "work": boolFlag, "trimpath": boolFlag,
		"modcacherw": boolFlag, "cover": boolFlag, "json": boolFlag, "buildvcs": boolFlag,
		"p": valueFlag, "tags": valueFlag, "mod": valueFlag, "covermode": valueFlag, "coverpkg": valueFlag, "installsuffix": valueFlag,
		"buildmode": {value: true, check: oneOf("-buildmode", "exe", "pie", "default")},
		"compiler":  {value: true, check: oneOf("-compiler", "gc")},
		"ldflags":   {value: true, check: func(v string) error { _, err := parseTool(v, linkFlags, "ldflag"); return err }},
		"gcflags":   {value: true, check: func(v string) error { _, err := parseTool(v, compileFlags, "gcflag"); return err }},
		"asmflags":  {value: true, check: func(v string) error { _, err := parseTool(v, asmFlags, "asmflag"); return err }},
		"overlay":   pathFlag, "modfile": pathFlag, "pkgdir": pathFlag, "pgo": pathFlag,
		"toolexec":   refused(true, ErrToolexec, "it runs a program in place of each tool of the build"),
		"gccgoflags": refused(true, ErrNotAllowed, "kiln compiles with gc only"),
		"race":       cgo(false, "-race needs cgo"),
		"msan":       cgo(false, "-msan needs cgo"),
		"asan":       cgo(false, "-asan needs cgo"),
		"linkshared": refused(false, ErrNotAllowed, "kiln links static binaries"),
		"o":          refused(true, ErrNotAllowed, "kiln chooses where the binary goes"),
		"C":          refused(true, ErrNotAllowed, "kiln chooses the directory go build runs in"),
	}
	linkFlags = map[string]flagSpec{
		"s": boolFlag, "w": boolFlag, "v": boolFlag, "compressdwarf": boolFlag, "checklinkname": boolFlag,
		"X": valueFlag, "B": valueFlag, "strictdups": valueFlag, "randlayout": valueFlag,
		"linkmode": {value: true, check: func(v string) error {
			if v == "external" {
				return fmt.Errorf("%w: external linking runs a C linker; %s", ErrCgo, cgoWayOut)
			}
			return oneOf("-linkmode", "internal", "auto")(v)
		}},
		"extld":      cgo(true, "-extld runs a C linker"),
		"extldflags": cgo(true, "-extldflags are for a C linker"),
		"extar":      cgo(true, "-extar runs an archiver"),
		"libgcc":     cgo(true, "-libgcc is for a C linker"),
		"o":          refused(true, ErrNotAllowed, "kiln chooses where the binary goes"),
		"buildid":    refused(true, ErrNotAllowed, "kiln keys its layer cache by the Go build ID; leave it to go build"),
	}
	compileFlags = map[string]flagSpec{
		"N": boolFlag, "l": boolFlag, "m": boolFlag, "B": boolFlag, "C": boolFlag, "S": boolFlag, "e": boolFlag,
		"h": boolFlag, "K": boolFlag, "L": boolFlag, "live": boolFlag, "wb": boolFlag, "smallframes": boolFlag,
		"dwarf": boolFlag, "dwarflocationlists": boolFlag,
		"d": valueFlag, "c": valueFlag, "spectre": valueFlag,
	}
	asmFlags = map[string]flagSpec{"S": boolFlag, "e": boolFlag, "D": valueFlag, "I": valueFlag, "spectre": valueFlag}
}

// allowedList names the flags specs allows, for messages.
func allowedList(specs map[string]flagSpec) string {
	var names []string
	for n, s := range specs {
		if s.why == nil {
			names = append(names, "-"+n)
		}
	}
	slices.Sort(names)
	return strings.Join(names, " ")
}

// parseArgs reads args as the flag package does (-f, --f, -f=v, and -f v
// for a flag that takes a value) and applies specs. In GOFLAGS every
// argument is one flag, and a flag specs lacks is dropped, not refused.
func parseArgs(args []string, specs map[string]flagSpec, what string, goflags bool) ([]arg, error) {
	var out []arg
	for i := 0; i < len(args); i++ {
		text := args[i]
		if !strings.HasPrefix(text, "-") || text == "-" || text == "--" || strings.HasPrefix(text, "---") {
			return nil, fmt.Errorf("%s %q: %w: only flags go here, and kiln names the package itself", what, text, ErrNotAllowed)
		}
		name := strings.TrimPrefix(text[1:], "-")
		name, value, hasValue := strings.Cut(name, "=")
		spec, known := specs[name]
		switch {
		case !known && goflags:
			continue
		case !known:
			return nil, fmt.Errorf("%s %q: %w: kiln allows %s", what, text, ErrNotAllowed, allowedList(specs))
		case spec.why != nil:
			return nil, fmt.Errorf("%s %q: %w", what, text, spec.why)
		}
		if spec.value && !hasValue {
			if goflags || i+1 == len(args) {
				return nil, fmt.Errorf("%s %q: %w: it needs a value; write -%s=VALUE", what, text, ErrBadFlag, name)
			}
			i++
			value = args[i]
			text += " " + value
		}
		if spec.check != nil {
			if err := spec.check(value); err != nil {
				return nil, fmt.Errorf("%s %q: %w", what, text, err)
			}
		}
		out = append(out, arg{name: name, value: value, text: text, what: what, spec: spec})
	}
	return out, nil
}

// parseGOFLAGS reads a GOFLAGS value as the go command splits it.
func parseGOFLAGS(v, what string) ([]arg, error) {
	fields, err := splitQuoted(v)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w: %v", what, v, ErrBadFlag, err)
	}
	return parseArgs(fields, buildFlags, what, true)
}

// parseTool reads the value of -ldflags, -gcflags or -asmflags as the go
// command does ([pattern=]flags, quoted fields) and applies specs.
func parseTool(v string, specs map[string]flagSpec, what string) ([]arg, error) {
	v = strings.TrimSpace(v)
	if v != "" && !strings.HasPrefix(v, "-") {
		pattern, rest, ok := strings.Cut(v, "=")
		if !ok || pattern == "" {
			return nil, fmt.Errorf("%s value %q: %w: write flags or pattern=flags", what, v, ErrBadFlag)
		}
		v = rest
	}
	fields, err := splitQuoted(v)
	if err != nil {
		return nil, fmt.Errorf("%s value %q: %w: %v", what, v, ErrBadFlag, err)
	}
	return parseArgs(fields, specs, what, false)
}

// splitQuoted splits s at spaces; a field may be wrapped whole in ” or "",
// with nothing unescaped inside: the go command's rule for GOFLAGS and
// the tools' flags.
func splitQuoted(s string) ([]string, error) {
	var fields []string
	for {
		s = strings.TrimLeft(s, " \t\n\r")
		if s == "" {
			return fields, nil
		}
		if q := s[0]; q == '"' || q == '\'' {
			end := strings.IndexByte(s[1:], q)
			if end < 0 {
				return nil, fmt.Errorf("unterminated %c string", q)
			}
			fields = append(fields, s[1:1+end])
			s = s[2+end:]
			continue
		}
		end := strings.IndexAny(s, " \t\n\r")
		if end < 0 {
			end = len(s)
		}
		fields = append(fields, s[:end])
		s = s[end:]
	}
}

// joinGOFLAGS writes args back as one GOFLAGS value that splitQuoted
// reads as the same fields.
func joinGOFLAGS(args []arg) (string, error) {
	parts := make([]string, len(args))
	for i, a := range args {
		s := a.text
		if strings.ContainsAny(s, " \t\n\r") || strings.HasPrefix(s, "'") || strings.HasPrefix(s, `"`) {
			switch {
			case !strings.Contains(s, "'"):
				s = "'" + s + "'"
			case !strings.Contains(s, `"`):
				s = `"` + s + `"`
			default:
				return "", fmt.Errorf("GOFLAGS flag %q: %w: it holds both kinds of quote and cannot be passed on", s, ErrBadFlag)
			}
		}
		parts[i] = s
	}
	return strings.Join(parts, " "), nil
}

// checkPaths refuses a path flag (-overlay, -modfile, -pkgdir, -pgo FILE)
// naming a file outside the module at root, relative to dir where go runs,
// and an overlay that replaces or supplies files outside it.
func checkPaths(args []arg, dir, root string) error {
	for _, a := range args {
		if !a.spec.path || a.name == "pgo" && (a.value == "auto" || a.value == "off" || a.value == "") {
			continue
		}
		if dir == "" {
			return fmt.Errorf("%s %q: %w: kiln cannot tell whether it is inside the module", a.what, a.text, ErrNotAllowed)
		}
		if root == "" {
			root = moduleRoot(dir)
		}
		p, err := inside(root, dir, a.value)
		if err != nil {
			return fmt.Errorf("%s %q: %w", a.what, a.text, err)
		}
		if a.name != "overlay" {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			continue // go build says what is wrong with it
		}
		var overlay struct{ Replace map[string]string }
		if json.Unmarshal(data, &overlay) != nil {
			continue
		}
		for from, to := range overlay.Replace {
			for _, f := range []string{from, to} {
				if f == "" {
					continue
				}
				if _, err := inside(root, dir, f); err != nil {
					return fmt.Errorf("overlay %s: %w", p, err)
				}
			}
		}
	}
	return nil
}

// inside resolves name against dir and refuses it unless it lies in root,
// by its path and, when it exists, by where its symbolic links lead.
func inside(root, dir, name string) (string, error) {
	p := name
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	p = filepath.Clean(p)
	ok := within(root, p)
	if ok {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			realRoot, err := filepath.EvalSymlinks(root)
			if err != nil {
				realRoot = root
			}
			ok = within(realRoot, real)
		}
	}
	if !ok {
		return "", fmt.Errorf("%w: %s is outside the module %s; keep build inputs in the module", ErrNotAllowed, name, root)
	}
	return p, nil
}

func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// moduleRoot is the directory of the go.mod around dir, else dir.
func moduleRoot(dir string) string {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}
