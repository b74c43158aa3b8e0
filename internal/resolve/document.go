package resolve

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/kilnbuild/kiln/internal/oneline"
)

// Scheme marks a string as an image to build from the Go package named
// after it, as in ko.
const Scheme = "ko://"

// document is one YAML document of a file: its bytes, where it starts, and
// the ko:// references found in it.
type document struct {
	data      []byte
	startLine int // 1-based line of data[0] in its file
	body      ast.Node
	refs      []occurrence
}

// occurrence is one ko:// string in a document, with the edits that
// replace it.
type occurrence struct {
	importPath string
	line       int // 1-based, in the file
	edits      []edit
}

// edit replaces data[start:end] with the image reference (ref) or with
// nothing.
type edit struct {
	start, end int
	ref        bool
}

// splitDocuments cuts a file into its documents at "---" marker lines. A
// marker is a document boundary wherever it stands at the start of a line
// (YAML forbids it inside scalars), so cutting the bytes first and parsing
// each piece alone keeps every piece's bytes exact. Lines before the first
// marker that hold only comments or directives stay with the document
// after them.
func splitDocuments(data []byte) [][]byte {
	var docs [][]byte
	start, content := 0, false
	for off := 0; off < len(data); {
		end := bytes.IndexByte(data[off:], '\n')
		if end < 0 {
			end = len(data)
		} else {
			end += off + 1
		}
		line := data[off:end]
		switch {
		case isMarker(line):
			if content {
				docs = append(docs, data[start:off])
				start = off
			}
			content = true
		case !blankOrComment(line):
			content = true
		}
		off = end
	}
	if start < len(data) || len(docs) == 0 {
		docs = append(docs, data[start:])
	}
	return docs
}

func isMarker(line []byte) bool {
	rest, ok := bytes.CutPrefix(line, []byte("---"))
	return ok && (len(rest) == 0 || rest[0] == ' ' || rest[0] == '\t' || rest[0] == '\r' || rest[0] == '\n')
}

func blankOrComment(line []byte) bool {
	t := bytes.TrimSpace(line)
	return len(t) == 0 || t[0] == '#' || t[0] == '%'
}

// parseDocument parses one document and finds its ko:// strings.
func parseDocument(name string, data []byte, startLine int) (*document, error) {
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		line, msg := startLine, oneline.First(err.Error())
		var ye yaml.Error
		if errors.As(err, &ye) {
			msg = ye.GetMessage()
			if tok := ye.GetToken(); tok != nil && tok.Position != nil {
				line += tok.Position.Line - 1
			}
		}
		return nil, fmt.Errorf("%s:%d: %w: %s", name, line, ErrSyntax, msg)
	}
	d := &document{data: data, startLine: startLine}
	for _, doc := range f.Docs {
		if _, directive := doc.Body.(*ast.DirectiveNode); doc.Body != nil && !directive {
			if d.body != nil {
				return nil, fmt.Errorf("%s:%d: %w: more than one document between markers", name, startLine, ErrSyntax)
			}
			d.body = doc.Body
		}
	}
	lines := lineStarts(data)
	var walkErr error
	walk(d.body, func(s *ast.StringNode, block *ast.LiteralNode) {
		if walkErr != nil || !strings.HasPrefix(s.Value, Scheme) {
			return
		}
		ref := strings.TrimSpace(s.Value)
		tok := s.Token
		if block != nil {
			tok = block.Start
		}
		o := occurrence{importPath: strings.TrimPrefix(ref, Scheme), line: startLine + tok.Position.Line - 1}
		at := func(err error) error {
			return &Error{Location: Location{File: name, Line: o.line}, ImportPath: o.importPath, Err: err}
		}
		if o.importPath == "" {
			walkErr = at(ErrNoPackage)
			return
		}
		edits, err := locate(data, lines, s, block, ref)
		if err != nil {
			walkErr = at(err)
			return
		}
		o.edits = edits
		d.refs = append(d.refs, o)
	})
	return d, walkErr
}

// walk calls fn for every string scalar of n (mapping keys included, as
// ko does), with the block scalar that holds it, if any. Anchor and alias
// names are not values, and an explicitly tagged scalar counts only when
// its tag is !!str.
func walk(n ast.Node, fn func(*ast.StringNode, *ast.LiteralNode)) {
	switch n := n.(type) {
	case *ast.StringNode:
		fn(n, nil)
	case *ast.LiteralNode:
		fn(n.Value, n)
	case *ast.MappingNode:
		for _, v := range n.Values {
			walk(v, fn)
		}
	case *ast.MappingValueNode:
		walk(n.Key, fn)
		walk(n.Value, fn)
	case *ast.MappingKeyNode:
		walk(n.Value, fn)
	case *ast.SequenceNode:
		for _, v := range n.Values {
			walk(v, fn)
		}
	case *ast.AnchorNode:
		walk(n.Value, fn)
	case *ast.TagNode:
		if t := n.Start.Value; t == "!!str" || t == "tag:yaml.org,2002:str" {
			walk(n.Value, fn)
		}
	}
}

// locate finds the bytes of a ko:// string. Plain and quoted scalars are
// replaced inside their quotes; a block scalar (| or >) becomes a plain
// scalar on its header's line, since its value carries a line break an
// image reference must not have.
func locate(data []byte, lines []int, s *ast.StringNode, block *ast.LiteralNode, ref string) ([]edit, error) {
	if block != nil {
		return locateBlock(data, lines, block, ref)
	}
	start, ok := offset(data, lines, s.Token.Position.Line, s.Token.Position.Column)
	if !ok {
		return nil, ErrNotLiteral
	}
	if c := data[start]; c == '"' || c == '\'' {
		start++
		if end := start + len(s.Value); end < len(data) && string(data[start:end]) == s.Value && data[end] == c {
			return []edit{{start: start, end: end, ref: true}}, nil
		}
		return nil, ErrNotLiteral
	}
	// A tagged scalar's column is where its tag ends, before the blanks.
	for start < len(data) && (data[start] == ' ' || data[start] == '\t') {
		start++
	}
	if end := start + len(s.Value); end <= len(data) && string(data[start:end]) == s.Value {
		return []edit{{start: start, end: end, ref: true}}, nil
	}
	return nil, ErrNotLiteral
}

func locateBlock(data []byte, lines []int, block *ast.LiteralNode, ref string) ([]edit, error) {
	pos := block.Start.Position
	hs, ok := offset(data, lines, pos.Line, pos.Column)
	if !ok || !bytes.HasPrefix(data[hs:], []byte(block.Start.Value)) {
		return nil, ErrNotLiteral
	}
	he := hs + len(block.Start.Value)
	if pos.Line >= len(lines) {
		return nil, ErrNotLiteral
	}
	// The value is ref alone: its one non-blank line is the first one.
	for l := pos.Line; l < len(lines); l++ {
		end := len(data)
		if l+1 < len(lines) {
			end = lines[l+1]
		}
		line := data[lines[l]:end]
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if string(bytes.TrimSpace(line)) != ref {
			return nil, ErrNotLiteral
		}
		return []edit{{start: hs, end: he, ref: true}, {start: lines[pos.Line], end: end}}, nil
	}
	return nil, ErrNotLiteral
}

// lineStarts are the byte offsets where each line begins.
func lineStarts(data []byte) []int {
	starts := []int{0}
	for i, c := range data {
		if c == '\n' && i+1 < len(data) {
			starts = append(starts, i+1)
		}
	}
	return starts
}

// offset turns a 1-based line and column (in characters) into a byte offset.
func offset(data []byte, lines []int, line, col int) (int, bool) {
	if line < 1 || line > len(lines) || col < 1 {
		return 0, false
	}
	off := lines[line-1]
	for i := 1; i < col; i++ {
		if off >= len(data) || data[off] == '\n' {
			return 0, false
		}
		_, size := utf8.DecodeRune(data[off:])
		off += size
	}
	return off, off < len(data)
}
