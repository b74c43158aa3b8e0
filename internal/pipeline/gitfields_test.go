package pipeline

import (
	"slices"
	"testing"
)

func TestGitFields(t *testing.T) {
	for _, tc := range []struct {
		templates []string
		fields    []string
		uses      bool
	}{
		{[]string{"-s", "-w"}, nil, false},
		{[]string{"-X main.v={{.Git.Tag}}"}, []string{"Tag"}, true},
		{[]string{"-X a={{.Git.ShortCommit}}-{{.Git.TreeState}}", "{{.Env.X}}"}, []string{"ShortCommit", "TreeState"}, true},
		{[]string{"{{with .Git}}{{.Tag}}{{end}}"}, nil, true}, // not .Git.Field: wait for all
	} {
		fields, uses := gitFields(tc.templates)
		if uses != tc.uses || !slices.Equal(fields, tc.fields) {
			t.Errorf("gitFields(%q) = %v, %v; want %v, %v", tc.templates, fields, uses, tc.fields, tc.uses)
		}
	}
}
