package config

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid is matched by errors.Is for every error about a config file's
// content or location.
var ErrInvalid = errors.New("invalid config")

// Error is a problem with a config file. Its message is a single line of the
// form "FILE:LINE:COL: message".
type Error struct {
	File string // the name given to Parse, or the path being looked up
	Line int    // 1-based; 0 when unknown
	Col  int    // 1-based; 0 when unknown
	Msg  string // what is wrong and what to do about it
	Err  error  // the underlying error, if any
}

// Error implements error.
func (e *Error) Error() string {
	where := e.File
	if e.Line > 0 {
		where += fmt.Sprintf(":%d", e.Line)
		if e.Col > 0 {
			where += fmt.Sprintf(":%d", e.Col)
		}
		where = strings.TrimPrefix(where, ":")
	}
	s := e.Msg
	if where != "" {
		s = where + ": " + s
	}
	return oneLine.Replace(s)
}

// Is reports whether target is ErrInvalid.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// Unwrap returns the underlying error, if any.
func (e *Error) Unwrap() error { return e.Err }

var oneLine = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ")
