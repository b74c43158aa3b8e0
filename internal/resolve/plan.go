package resolve

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"slices"
	"sync"

	"github.com/goccy/go-yaml/ast"
	"golang.org/x/sync/errgroup"
)

// Build turns an import path (without ko://) into the reference of the
// image published for it, REPO@sha256:… .
type Build func(ctx context.Context, importPath string) (ref string, err error)

// Plan is the documents of some inputs, selected, with the ko://
// references they hold.
type Plan struct {
	files []planFile
	paths []string            // distinct import paths, in the order first written
	where map[string]Location // where each import path is first written
}

type planFile struct {
	name string
	docs []*document // the selected ones
}

// Scan parses every input, keeps the documents sel selects (all when sel
// is nil) and finds their ko:// references. Nothing is built.
func Scan(inputs []Input, sel Selector) (*Plan, error) {
	p := &Plan{where: map[string]Location{}}
	for _, in := range inputs {
		pf := planFile{name: in.Name}
		line := 1
		for _, chunk := range splitDocuments(in.Data) {
			if len(chunk) == 0 {
				continue
			}
			d, err := parseDocument(in.Name, chunk, line)
			if err != nil {
				return nil, err
			}
			line += bytes.Count(chunk, []byte("\n"))
			if sel != nil {
				ok, err := selected(d.body, sel)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", Location{in.Name, d.startLine + firstLine(d.body) - 1}, err)
				}
				if !ok {
					continue
				}
			}
			pf.docs = append(pf.docs, d)
			for _, o := range d.refs {
				if _, seen := p.where[o.importPath]; !seen {
					p.where[o.importPath] = Location{File: in.Name, Line: o.line}
					p.paths = append(p.paths, o.importPath)
				}
			}
		}
		p.files = append(p.files, pf)
	}
	return p, nil
}

// ImportPaths are the distinct packages the selected documents name, in
// the order they are first written.
func (p *Plan) ImportPaths() []string { return slices.Clone(p.paths) }

// Where is the first place importPath is written.
func (p *Plan) Where(importPath string) Location { return p.where[importPath] }

// Each calls fn once per distinct import path, at most jobs at a time (<1
// means one). The first failure cancels the others and is returned as an
// *Error naming where the package is first written.
func (p *Plan) Each(ctx context.Context, jobs int, fn func(ctx context.Context, importPath string) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(jobs, 1))
	for _, ip := range p.paths {
		g.Go(func() error {
			if err := fn(gctx, ip); err != nil {
				return &Error{Location: p.where[ip], ImportPath: ip, Err: err}
			}
			return nil
		})
	}
	return g.Wait()
}

// Result is a resolved stream.
type Result struct {
	// Output is the selected documents with every ko:// reference
	// replaced; all other bytes are as read. Files are joined with "---".
	Output []byte
	// Refs are the distinct image references, in the order first written.
	Refs []string
}

// imageRef is compiled when first used, not at every kiln command's start.
var imageRef = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$`) })

// Resolve builds each distinct package once, at most jobs at a time, and
// replaces every reference. Nothing is returned unless every build
// succeeds, so a half-resolved stream never reaches its reader.
func (p *Plan) Resolve(ctx context.Context, jobs int, build Build) (Result, error) {
	var mu sync.Mutex
	refs := make(map[string]string, len(p.paths))
	err := p.Each(ctx, jobs, func(ctx context.Context, ip string) error {
		ref, err := build(ctx, ip)
		if err != nil {
			return err
		}
		if !imageRef().MatchString(ref) {
			return fmt.Errorf("the build gave %q, not an image reference", ref)
		}
		mu.Lock()
		refs[ip] = ref
		mu.Unlock()
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	res := Result{Output: p.render(refs)}
	for _, ip := range p.paths {
		res.Refs = append(res.Refs, refs[ip])
	}
	return res, nil
}

// render writes the selected documents with their edits applied. Files
// are separated by a "---" line unless the next one starts with its own;
// a stream that opens with a JSON file gets a leading "---", so that
// kubectl reads it as YAML documents rather than one JSON stream.
func (p *Plan) render(refs map[string]string) []byte {
	var out bytes.Buffer
	files := 0
	for _, f := range p.files {
		if len(f.docs) > 0 {
			files++
		}
	}
	for _, f := range p.files {
		if len(f.docs) == 0 {
			continue
		}
		first := f.docs[0].data
		switch {
		case out.Len() > 0:
			if !bytes.HasSuffix(out.Bytes(), []byte("\n")) {
				out.WriteByte('\n')
			}
			if !isMarker(first) {
				out.WriteString("---\n")
			}
		case files > 1 && bytes.HasPrefix(bytes.TrimSpace(first), []byte("{")):
			out.WriteString("---\n")
		}
		for _, d := range f.docs {
			d.render(&out, refs)
		}
	}
	return out.Bytes()
}

func (d *document) render(out *bytes.Buffer, refs map[string]string) {
	var edits []edit
	var with []string
	for _, o := range d.refs {
		for _, e := range o.edits {
			edits = append(edits, e)
			with = append(with, refs[o.importPath])
		}
	}
	idx := make([]int, len(edits))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return edits[a].start - edits[b].start })
	at := 0
	for _, i := range idx {
		e := edits[i]
		out.Write(d.data[at:e.start])
		if e.ref {
			out.WriteString(with[i])
		}
		at = e.end
	}
	out.Write(d.data[at:])
}

// selected reports whether sel selects a document: an object by its
// metadata.labels, a List when every item is selected. Empty documents are
// never selected; anything else that is not an object is an error, as in
// ko.
func selected(body ast.Node, sel Selector) (bool, error) {
	if body == nil {
		return false, nil
	}
	if _, ok := unwrap(body).(*ast.NullNode); ok {
		return false, nil
	}
	kind, err := objectKind(body)
	if err != nil {
		return false, err
	}
	if kind != "List" {
		return sel.Matches(labelsOf(body)), nil
	}
	items, ok := unwrap(field(body, "items")).(*ast.SequenceNode)
	if !ok {
		return false, fmt.Errorf("a List without items: %w", ErrNotObject)
	}
	n := 0
	for _, it := range items.Values {
		if _, err := objectKind(it); err != nil {
			return false, err
		}
		if sel.Matches(labelsOf(it)) {
			n++
		}
	}
	if n != 0 && n != len(items.Values) {
		return false, fmt.Errorf("-l selects %d of the %d items of this List: kiln keeps a List whole; split it into documents", n, len(items.Values))
	}
	return n > 0, nil
}

func objectKind(n ast.Node) (string, error) {
	api, ok1 := scalar(field(n, "apiVersion"))
	kind, ok2 := scalar(field(n, "kind"))
	if !ok1 || !ok2 || api == "" || kind == "" {
		return "", ErrNotObject
	}
	return kind, nil
}

func labelsOf(n ast.Node) map[string]string {
	labels := map[string]string{}
	for _, kv := range entries(field(field(n, "metadata"), "labels")) {
		k, ok1 := scalar(kv.Key)
		v, ok2 := scalar(kv.Value)
		if ok1 && ok2 {
			labels[k] = v
		}
	}
	return labels
}

// field is the value of key in mapping n, or nil.
func field(n ast.Node, key string) ast.Node {
	for _, kv := range entries(n) {
		if k, ok := scalar(kv.Key); ok && k == key {
			return kv.Value
		}
	}
	return nil
}

// entries are the key-value pairs of a mapping; none for anything else.
func entries(n ast.Node) []*ast.MappingValueNode {
	switch m := unwrap(n).(type) {
	case *ast.MappingNode:
		return m.Values
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{m}
	}
	return nil
}

func scalar(n ast.Node) (string, bool) {
	switch n := unwrap(n).(type) {
	case *ast.StringNode:
		return n.Value, true
	case *ast.LiteralNode:
		return n.Value.Value, true
	case ast.ScalarNode:
		if t := n.GetToken(); t != nil {
			return t.Value, true
		}
	}
	return "", false
}

func unwrap(n ast.Node) ast.Node {
	for {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		case *ast.MappingKeyNode:
			n = v.Value
		default:
			return n
		}
	}
}

func firstLine(n ast.Node) int {
	if n == nil || n.GetToken() == nil || n.GetToken().Position == nil {
		return 1
	}
	return n.GetToken().Position.Line
}
