package oneline

import "testing"

func TestFirst(t *testing.T) {
	for in, want := range map[string]string{
		"":                    "",
		"one":                 "one",
		"one\ntwo":            "one",
		"\n  one\ntwo\n":      "one",
		"  spaced  ":          "spaced",
		"tab\tkept\nnot this": "tab\tkept",
	} {
		if got := First(in); got != want {
			t.Errorf("First(%q) = %q, want %q", in, got, want)
		}
	}
}
