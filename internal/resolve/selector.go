package resolve

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// Selector is a Kubernetes label selector: requirements joined by commas,
// each one of a=b, a==b, a!=b, a in (x,y), a notin (x,y), a and !a, with
// the API server's meaning (a!=b and notin also match objects without a).
type Selector []requirement

type requirement struct {
	key    string
	op     string // "in", "notin", "exists", "!exists"
	values []string
}

// The patterns are compiled when first used: labelPrefix's bounded
// repetition alone took milliseconds of every kiln command's start.
var (
	labelName   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$`) })
	labelPrefix = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$`) })
)

// ParseSelector parses s; "" selects everything and gives a nil Selector.
func ParseSelector(s string) (Selector, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var sel Selector
	for _, part := range splitOutsideParens(s) {
		r, err := parseRequirement(strings.TrimSpace(part))
		if err != nil {
			return nil, fmt.Errorf("%w %q: %v", ErrSelector, s, err)
		}
		sel = append(sel, r)
	}
	return sel, nil
}

func splitOutsideParens(s string) []string {
	var parts []string
	depth, start := 0, 0
	for i, c := range s {
		switch c {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	return append(parts, s[start:])
}

func parseRequirement(s string) (requirement, error) {
	if s == "" {
		return requirement{}, fmt.Errorf("empty requirement")
	}
	if key, ok := strings.CutPrefix(s, "!"); ok {
		r := requirement{key: strings.TrimSpace(key), op: "!exists"}
		return r, checkKey(r.key)
	}
	if open := strings.IndexByte(s, '('); open >= 0 {
		f := strings.Fields(s[:open])
		if len(f) != 2 || f[1] != "in" && f[1] != "notin" || !strings.HasSuffix(s, ")") {
			return requirement{}, fmt.Errorf("%q: write KEY in (V1,V2) or KEY notin (V1,V2)", s)
		}
		r := requirement{key: f[0], op: f[1]}
		for _, v := range strings.Split(s[open+1:len(s)-1], ",") {
			r.values = append(r.values, strings.TrimSpace(v))
		}
		return r, checkRequirement(r)
	}
	for _, op := range []string{"!=", "==", "="} {
		if k, v, ok := strings.Cut(s, op); ok {
			r := requirement{key: strings.TrimSpace(k), op: "in", values: []string{strings.TrimSpace(v)}}
			if op == "!=" {
				r.op = "notin"
			}
			return r, checkRequirement(r)
		}
	}
	if strings.ContainsAny(s, "<> \t") {
		return requirement{}, fmt.Errorf("%q: only =, ==, !=, in, notin, KEY and !KEY are supported", s)
	}
	return requirement{key: s, op: "exists"}, checkKey(s)
}

func checkRequirement(r requirement) error {
	if err := checkKey(r.key); err != nil {
		return err
	}
	for _, v := range r.values {
		if !labelName().MatchString(v) {
			return fmt.Errorf("%q is not a label value", v)
		}
	}
	return nil
}

func checkKey(k string) error {
	prefix, name, ok := strings.Cut(k, "/")
	if !ok {
		prefix, name = "", k
	}
	if name == "" || !labelName().MatchString(name) || ok && !labelPrefix().MatchString(prefix) {
		return fmt.Errorf("%q is not a label key", k)
	}
	return nil
}

// Matches reports whether labels satisfy every requirement.
func (s Selector) Matches(labels map[string]string) bool {
	for _, r := range s {
		v, has := labels[r.key]
		var ok bool
		switch r.op {
		case "exists":
			ok = has
		case "!exists":
			ok = !has
		case "in":
			ok = has && slices.Contains(r.values, v)
		case "notin":
			ok = !has || !slices.Contains(r.values, v)
		}
		if !ok {
			return false
		}
	}
	return true
}
