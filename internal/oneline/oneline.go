package oneline

import "strings"

// First is s without surrounding space, up to its first line break.
func First(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
