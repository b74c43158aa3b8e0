package config

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// seeReadme ends messages about keys kiln does not know.
const seeReadme = " (see the config reference in README.md)"

// Parse reads YAML data; name is used in error messages (usually the file
// path). An empty document is a valid, empty config. Every error satisfies
// errors.Is(err, ErrInvalid) and is a single line.
func Parse(name string, data []byte) (*Config, error) {
	d := &doc{name: name}
	f, err := parseYAML(data)
	if err != nil {
		return nil, d.yamlError(err)
	}
	var body ast.Node
	for _, dd := range f.Docs {
		if dd == nil || dd.Body == nil {
			continue
		}
		if body != nil {
			return nil, d.nodeError(dd.Body, "a second YAML document; keep the whole config in one document (remove the ---)")
		}
		body = dd.Body
	}

	c := &Config{}
	if body == nil {
		return c, nil
	}
	body = d.walk(body, reflect.TypeFor[Config](), nil)
	if d.err != nil {
		return nil, d.err
	}
	if err := decode(body, c); err != nil {
		return nil, d.yamlError(err)
	}
	if err := d.validate(c); err != nil {
		return nil, err
	}
	return c, nil
}

// parseYAML and decode call into go-yaml, turning a panic on odd input into an error.
func parseYAML(data []byte) (f *ast.File, err error) {
	defer recoverTo(&err)
	return parser.ParseBytes(data, 0)
}

func decode(body ast.Node, c *Config) (err error) {
	defer recoverTo(&err)
	return yaml.NewDecoder(bytes.NewReader(nil), yaml.Strict()).DecodeFromNode(body, c)
}

func recoverTo(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("cannot read this YAML (go-yaml failed: %v)", r)
	}
}

// doc is a config file being read: its name, where each value sits, and
// the first unknown key.
type doc struct {
	name  string
	spots []spot
	err   error
}

// spot is a value in the document and the path to it: map keys (string)
// and list indexes (int) from the top.
type spot struct {
	path []any
	node ast.Node
}

// koStringLists are the list settings ko also accepts as a single string. ko
// splits some of them at spaces (true) and takes the whole string as the one
// item of the others (false).
var koStringLists = map[reflect.Type]map[string]bool{
	reflect.TypeFor[Config](): {"defaultPlatforms": true, "defaultEnv": true, "defaultFlags": true, "defaultLdflags": true},
	reflect.TypeFor[Build]():  {"env": false, "ldflags": false, "flags": true, "linux_capabilities": true},
}

// walk records where each value of n sits and finds unknown keys, given t,
// the Go type n is decoded into. It returns n rewritten so that it decodes
// as ko reads it: a number or boolean where a string is wanted keeps the
// text it was written as (mode: 0644 stays "0644", not "420"), and a string
// given for a list in koStringLists becomes a list.
//
// Where t is nil (under an unknown key, or where the node has the wrong
// shape) there is nothing to check: the decoder reports the problem above.
func (d *doc) walk(n ast.Node, t reflect.Type, path []any) ast.Node {
	if v, ok := n.(*ast.AnchorNode); ok {
		v.Value = d.walk(v.Value, t, path)
		return v
	}
	if t != nil && t.Kind() == reflect.String {
		n = asString(n)
	}
	d.spots = append(d.spots, spot{slices.Clone(path), n})
	if t == nil {
		return n
	}
	switch v := n.(type) {
	case *ast.MappingValueNode: // a lone key/value pair
		d.walkPair(v, t, path)
	case *ast.MappingNode:
		for _, mv := range v.Values {
			d.walkPair(mv, t, path)
		}
	case *ast.SequenceNode:
		var elem reflect.Type
		if t.Kind() == reflect.Slice {
			elem = t.Elem()
		}
		for i, item := range v.Values {
			v.Values[i] = d.walk(item, elem, append(path, i))
		}
	}
	return n
}

func (d *doc) walkPair(mv *ast.MappingValueNode, t reflect.Type, path []any) {
	if mv.Key == nil || mv.Value == nil {
		return
	}
	if mv.Key.IsMergeKey() {
		mv.Value = d.walk(mv.Value, t, path)
		return
	}
	tk := mv.Key.GetToken()
	if tk == nil {
		return
	}
	name := tk.Value
	ft, known := fieldType(t, name)
	if !known && d.err == nil {
		d.err = d.unknownKey(mv.Key, name, t, path)
	}
	if split, ok := koStringLists[t][name]; ok {
		mv.Value = asList(mv.Value, split)
	}
	mv.Value = d.walk(mv.Value, ft, append(path, name))
}

// fieldType returns the type the value of key is decoded into, and false
// if t is a struct without that key.
func fieldType(t reflect.Type, key string) (reflect.Type, bool) {
	switch t.Kind() {
	case reflect.Struct:
		for i := range t.NumField() {
			if yamlKey(t.Field(i)) == key {
				return t.Field(i).Type, true
			}
		}
		return nil, false
	case reflect.Map:
		return t.Elem(), true
	}
	return nil, true // the decoder reports the mapping as a type error
}

func yamlKey(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" {
		return ""
	}
	return name
}

// yamlKeys lists the keys of struct type t.
func yamlKeys(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		if k := yamlKey(t.Field(i)); k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}

// scalarText returns a scalar's text as written, and whether n is a
// scalar other than null.
func scalarText(n ast.Node) (string, bool) {
	switch v := n.(type) {
	case *ast.StringNode:
		return v.Value, true
	case *ast.LiteralNode:
		if v.Value != nil {
			return v.Value.Value, true
		}
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return v.GetToken().Value, true
	}
	return "", false
}

// asString turns a number or boolean into a string node with the same text.
func asString(n ast.Node) ast.Node {
	switch n.(type) {
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		s, _ := scalarText(n)
		return stringNode(n.GetToken(), s)
	}
	return n
}

// asList turns a scalar into a list node, split at spaces or as one item.
func asList(n ast.Node, split bool) ast.Node {
	s, ok := scalarText(n)
	if !ok {
		return n
	}
	items := []string{s}
	if split {
		items = strings.Fields(s)
	}
	tk := *n.GetToken()
	seq := ast.Sequence(&tk, true)
	seq.End = &tk
	for _, item := range items {
		seq.Values = append(seq.Values, stringNode(&tk, item))
	}
	return seq
}

// stringNode makes a string node placed at tk.
func stringNode(tk *token.Token, s string) *ast.StringNode {
	c := *tk
	c.Type = token.StringType
	c.Value = s
	return ast.String(&c)
}

// find returns the value at path, or nil.
func (d *doc) find(path []any) *spot {
	for i := range d.spots {
		if slices.Equal(d.spots[i].path, path) {
			return &d.spots[i]
		}
	}
	return nil
}

// at returns the value whose node starts with tk, or nil.
func (d *doc) at(tk *token.Token) *spot {
	for i := range d.spots {
		if tk != nil && d.spots[i].node.GetToken() == tk {
			return &d.spots[i]
		}
	}
	return nil
}

// pathString renders a path the way messages show it, e.g. builds[0].env[1]
// or kiln.builds["example.com/cmd/app"].files[0].
func pathString(path []any) string {
	var b strings.Builder
	for _, p := range path {
		switch p := p.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", p)
		case string:
			if !isPlainKey(p) {
				fmt.Fprintf(&b, "[%q]", p)
				continue
			}
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(p)
		}
	}
	return b.String()
}

func isPlainKey(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// position is where a node starts; a block mapping starts at its first key.
func position(n ast.Node) (line, col int) {
	switch v := n.(type) {
	case *ast.MappingNode:
		if !v.IsFlowStyle && len(v.Values) > 0 && v.Values[0].Key != nil {
			n = v.Values[0].Key
		}
	case *ast.MappingValueNode:
		if v.Key != nil {
			n = v.Key
		}
	}
	if tk := n.GetToken(); tk != nil {
		return tk.Position.Line, tk.Position.Column
	}
	return 0, 0
}

// nodeError reports a problem at n.
func (d *doc) nodeError(n ast.Node, format string, args ...any) *Error {
	e := &Error{File: d.name, Msg: fmt.Sprintf(format, args...)}
	e.Line, e.Col = position(n)
	return e
}

// errorAt reports a problem with the value at path, placed at that value or,
// when it is not in the document as such (an alias, say), at the nearest
// enclosing one.
func (d *doc) errorAt(path []any, format string, args ...any) *Error {
	e := &Error{File: d.name, Msg: pathString(path) + ": " + fmt.Sprintf(format, args...)}
	for n := len(path); n > 0; n-- {
		if s := d.find(path[:n]); s != nil {
			e.Line, e.Col = position(s.node)
			break
		}
	}
	return e
}

func (d *doc) unknownKey(key ast.Node, name string, t reflect.Type, path []any) *Error {
	msg := fmt.Sprintf("unknown key %q", name)
	if len(path) > 0 {
		msg = pathString(path) + ": " + msg
	}
	keys := yamlKeys(t)
	switch {
	case t == reflect.TypeFor[Kiln]() && slices.Contains(yamlKeys(reflect.TypeFor[Image]()), name):
		msg += "; image settings go under kiln.defaults or kiln.builds.<id or import path>"
	case suggest(name, keys) != "":
		msg += fmt.Sprintf("; did you mean %q?", suggest(name, keys))
	}
	return d.nodeError(key, "%s%s", msg, seeReadme)
}

// suggest returns the key in keys closest to a misspelt name, or "".
func suggest(name string, keys []string) string {
	best, bestDist := "", 3 // at most two edits away
	for _, k := range keys {
		if strings.EqualFold(k, name) {
			return k
		}
		if dist := editDistance(strings.ToLower(name), strings.ToLower(k)); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// yamlError turns an error from go-yaml into a one-line *Error.
func (d *doc) yamlError(err error) error {
	if errors.Is(err, yaml.ErrExceededMaxDepth) {
		return &Error{File: d.name, Msg: "the YAML is nested too deeply for a config file", Err: err}
	}
	var ye yaml.Error
	if !errors.As(err, &ye) {
		return &Error{File: d.name, Msg: err.Error(), Err: err}
	}
	e := &Error{File: d.name, Err: err}
	tk := ye.GetToken()
	if tk != nil {
		e.Line, e.Col = tk.Position.Line, tk.Position.Column
	}
	switch ye := ye.(type) {
	case *yaml.SyntaxError:
		e.Msg = "invalid YAML: " + ye.Message
	case *yaml.UnknownFieldError:
		e.Msg = strings.Replace(ye.Message, "unknown field", "unknown key", 1) + seeReadme
	case *yaml.UnexpectedNodeTypeError:
		e.Msg = fmt.Sprintf("got %s, want %s", nodeKind(ye.Actual), nodeKind(ye.Expected))
	case *yaml.TypeError:
		e.Msg = fmt.Sprintf("got %s, want %s", typeKind(ye.SrcType), typeKind(ye.DstType))
	case *yaml.OverflowError:
		e.Msg = fmt.Sprintf("%s is out of range for %s", ye.SrcNum, typeKind(ye.DstType))
	default:
		e.Msg = ye.GetMessage()
	}
	if s := d.at(tk); s != nil {
		where := pathString(s.path)
		if where == "" {
			where = "top level"
		}
		e.Msg = where + ": " + e.Msg
		e.Line, e.Col = position(s.node)
	}
	return e
}

func nodeKind(t ast.NodeType) string {
	switch t {
	case ast.MappingType:
		return "a mapping"
	case ast.SequenceType:
		return "a list"
	case ast.StringType, ast.LiteralType:
		return "a string"
	case ast.IntegerType:
		return "an integer"
	case ast.FloatType:
		return "a number"
	case ast.BoolType:
		return "a boolean"
	case ast.NullType:
		return "null"
	}
	return t.YAMLName()
}

func typeKind(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean (true or false)"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.String {
			return "a list of strings"
		}
		return "a list"
	case reflect.Map:
		if t.Elem().Kind() == reflect.String {
			return "a mapping of strings"
		}
		return "a mapping"
	case reflect.Struct:
		return "a mapping"
	}
	return t.String()
}
