package resolve

import (
	"errors"
	"strings"
	"testing"
)

func TestParseSelectorBad(t *testing.T) {
	for _, s := range []string{"=b", "a b", "a in x", "a in (x", "a>1", "a=b c", "a,,b", "!", "a notin (x y)", "-a=b", "a=-b-", "Bad_Prefix/a=b"} {
		if _, err := ParseSelector(s); !errors.Is(err, ErrSelector) {
			t.Errorf("ParseSelector(%q) = %v, want ErrSelector", s, err)
		}
	}
}

func TestSelectorMatches(t *testing.T) {
	labels := map[string]string{"app": "web", "tier": "front", "example.com/team": "a"}
	tests := []struct {
		sel  string
		want bool
	}{
		{"", true},
		{"app=web", true},
		{"app==web", true},
		{"app = web , tier=front", true},
		{"app=api", false},
		{"app!=api", true},
		{"missing!=x", true},
		{"app in (api, web)", true},
		{"app in (api)", false},
		{"app notin (api,db)", true},
		{"missing notin (a)", true},
		{"app notin (web)", false},
		{"app", true},
		{"missing", false},
		{"!missing", true},
		{"!app", false},
		{"example.com/team=a", true},
		{"app=web,missing", false},
		{"app=", false},
	}
	for _, tt := range tests {
		sel, err := ParseSelector(tt.sel)
		if err != nil {
			t.Fatalf("%q: %v", tt.sel, err)
		}
		if got := sel.Matches(labels); got != tt.want {
			t.Errorf("%q matches = %v, want %v", tt.sel, got, tt.want)
		}
	}
}

func TestScanSelects(t *testing.T) {
	const in = `# a comment that leads the first object
apiVersion: v1
kind: ConfigMap
metadata: {name: a, labels: {app: web}}
data: {image: ko://example.com/m/cmd/a}
---
# no labels at all
apiVersion: v1
kind: ConfigMap
metadata:
  name: b
data:
  image: ko://example.com/m/cmd/b
---
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata:
    labels:
      app: web
---
apiVersion: v1
kind: Secret
metadata:
  labels: &l
    app: api
`
	tests := []struct {
		sel   string
		want  []string // documents kept, by a substring
		paths int
		err   string
	}{
		{sel: "app=web", want: []string{"name: a,", "kind: List"}, paths: 1},
		{sel: "app!=web", want: []string{"name: b\n", "kind: Secret"}, paths: 1},
		{sel: "!app", want: []string{"name: b\n"}, paths: 1},
		{sel: "app in (web,api)", want: []string{"name: a,", "kind: List", "kind: Secret"}, paths: 1},
	}
	for _, tt := range tests {
		t.Run(tt.sel, func(t *testing.T) {
			sel, err := ParseSelector(tt.sel)
			if err != nil {
				t.Fatal(err)
			}
			plan, err := Scan([]Input{{Name: "in.yaml", Data: []byte(in)}}, sel)
			if err != nil {
				t.Fatal(err)
			}
			out := string(plan.render(nil))
			if got := strings.Count(out, "apiVersion: v1\nkind:"); got != len(tt.want) {
				t.Errorf("kept %d documents, want %d:\n%s", got, len(tt.want), out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if len(plan.ImportPaths()) != tt.paths {
				t.Errorf("import paths %v, want %d (unselected documents build nothing)", plan.ImportPaths(), tt.paths)
			}
		})
	}
}

func TestScanSelectErrors(t *testing.T) {
	sel, _ := ParseSelector("app=web")
	tests := []struct{ name, in, want string }{
		{"not an object", "a: 1\n---\nfoo: bar\n", "in.yaml:1: not a Kubernetes object"},
		{"a sequence", "apiVersion: v1\nkind: A\n---\n- a\n", "in.yaml:4: not a Kubernetes object"},
		{"some items of a List", "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: A, metadata: {labels: {app: web}}}\n- {apiVersion: v1, kind: A}\n", "in.yaml:1: -l selects 1 of the 2 items of this List"},
		{"an item that is no object", "apiVersion: v1\nkind: List\nitems: [1]\n", "not a Kubernetes object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Scan([]Input{{Name: "in.yaml", Data: []byte(tt.in)}}, sel)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}
