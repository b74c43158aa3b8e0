package resolve

import (
	"errors"
	"fmt"
)

// Errors a caller can classify with errors.Is.
var (
	ErrSyntax     = errors.New("not valid YAML or JSON")
	ErrNoPackage  = errors.New("ko:// names no package: write ko://IMPORTPATH")
	ErrNotLiteral = errors.New("the reference is folded over lines or escaped: write it on one line, without escapes")
	ErrNotObject  = errors.New("not a Kubernetes object (no apiVersion and kind): -l selects objects only")
	ErrSelector   = errors.New("bad label selector")
)

// Location is a line of an input file.
type Location struct {
	File string
	Line int // 1-based
}

func (l Location) String() string { return fmt.Sprintf("%s:%d", l.File, l.Line) }

// Error is a failure about one ko:// reference: where it was first
// written, and why it cannot be resolved (the build's error included).
type Error struct {
	Location
	ImportPath string
	Err        error
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s%s: %v", e.Location, Scheme, e.ImportPath, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }
