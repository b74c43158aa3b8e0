package resolve

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// fakeRef is what the fake build gives for an import path.
func fakeRef(ip string) string {
	return "127.0.0.1:5000/" + filepath.Base(ip) + "@" + digest
}

// fakeBuild counts its calls per import path; paths under example.com/m/
// are main packages, "example.com/m/lib" is not, anything else is unknown.
type fakeBuild struct {
	mu    sync.Mutex
	calls map[string]int
}

func (f *fakeBuild) build(_ context.Context, ip string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[ip]++
	switch {
	case ip == "example.com/m/lib":
		return "", errors.New("package example.com/m/lib is package lib, not main")
	case !strings.HasPrefix(ip, "example.com/m/"):
		return "", fmt.Errorf("package %s not found", ip)
	}
	return fakeRef(ip), nil
}

func resolveString(t *testing.T, name, in string, sel Selector) (Result, *fakeBuild, error) {
	t.Helper()
	plan, err := Scan([]Input{{Name: name, Data: []byte(in)}}, sel)
	if err != nil {
		return Result{}, nil, err
	}
	fb := &fakeBuild{}
	res, err := plan.Resolve(context.Background(), 4, fb.build)
	return res, fb, err
}

// replaced is in with every ko://example.com/m/NAME replaced, for NAMEs.
func replaced(in string, names ...string) string {
	for _, n := range names {
		in = strings.ReplaceAll(in, "ko://example.com/m/"+n, fakeRef("example.com/m/"+n))
	}
	return in
}

func TestResolveKeepsBytes(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{name: "comments and order", in: "# top comment\nkind: Pod   # trailing\nspec:\n  containers:\n  - name: a # name\n    image: ko://example.com/m/cmd/a   # the image\n    zeta: 1\n    alpha: 2\n",
			want: replaced("# top comment\nkind: Pod   # trailing\nspec:\n  containers:\n  - name: a # name\n    image: ko://example.com/m/cmd/a   # the image\n    zeta: 1\n    alpha: 2\n", "cmd/a")},
		{name: "anchors and aliases", in: "x: &img ko://example.com/m/cmd/a\ny: *img\nz: &other {k: v}\nw: *other\n",
			want: replaced("x: &img ko://example.com/m/cmd/a\ny: *img\nz: &other {k: v}\nw: *other\n", "cmd/a")},
		{name: "flow style", in: "images: [ko://example.com/m/cmd/a, \"ko://example.com/m/cmd/b\", 'ko://example.com/m/cmd/a']\nm: {i: ko://example.com/m/cmd/b}\n",
			want: replaced("images: [ko://example.com/m/cmd/a, \"ko://example.com/m/cmd/b\", 'ko://example.com/m/cmd/a']\nm: {i: ko://example.com/m/cmd/b}\n", "cmd/a", "cmd/b")},
		{name: "quoted", in: "a: \"ko://example.com/m/cmd/a\"\nb: 'ko://example.com/m/cmd/a'\nc:    \"ko://example.com/m/cmd/a\"  # c\n",
			want: replaced("a: \"ko://example.com/m/cmd/a\"\nb: 'ko://example.com/m/cmd/a'\nc:    \"ko://example.com/m/cmd/a\"  # c\n", "cmd/a")},
		{name: "spaces inside quotes go with the reference", in: "a: \"ko://example.com/m/cmd/a \"\n",
			want: "a: \"" + fakeRef("example.com/m/cmd/a") + "\"\n"},
		{name: "literal block scalar", in: "a: |\n  ko://example.com/m/cmd/a\nb: 1\n",
			want: "a: " + fakeRef("example.com/m/cmd/a") + "\nb: 1\n"},
		{name: "folded block scalar with comment", in: "a: >- # keep me\n    ko://example.com/m/cmd/a\nb: 1\n",
			want: "a: " + fakeRef("example.com/m/cmd/a") + " # keep me\nb: 1\n"},
		{name: "CRLF", in: "a: ko://example.com/m/cmd/a\r\nb: \"ko://example.com/m/cmd/b\"\r\n# c\r\n---\r\nc: ko://example.com/m/cmd/a\r\n",
			want: replaced("a: ko://example.com/m/cmd/a\r\nb: \"ko://example.com/m/cmd/b\"\r\n# c\r\n---\r\nc: ko://example.com/m/cmd/a\r\n", "cmd/a", "cmd/b")},
		{name: "documents", in: "%YAML 1.2\n# lead\n---\na: ko://example.com/m/cmd/a\n...\n---\n# empty\n---\n--- # marker comment\nb: 1\n---\nc: ko://example.com/m/cmd/b\n",
			want: replaced("%YAML 1.2\n# lead\n---\na: ko://example.com/m/cmd/a\n...\n---\n# empty\n---\n--- # marker comment\nb: 1\n---\nc: ko://example.com/m/cmd/b\n", "cmd/a", "cmd/b")},
		{name: "JSON", in: "{\n  \"kind\": \"Pod\",\n  \"spec\": {\"containers\": [{\"image\": \"ko://example.com/m/cmd/a\"}]}\n}",
			want: replaced("{\n  \"kind\": \"Pod\",\n  \"spec\": {\"containers\": [{\"image\": \"ko://example.com/m/cmd/a\"}]}\n}", "cmd/a")},
		{name: "key and tagged string", in: "ko://example.com/m/cmd/a: 1\nb: !!str ko://example.com/m/cmd/b\n",
			want: replaced("ko://example.com/m/cmd/a: 1\nb: !!str ko://example.com/m/cmd/b\n", "cmd/a", "cmd/b")},
		{name: "left alone", in: "a: \" ko://example.com/m/cmd/a\"\nb: !custom ko://example.com/m/cmd/a\nc: example.com/m/cmd/a\n# ko://example.com/m/cmd/a\nd: x ko://example.com/m/cmd/a\n",
			want: "a: \" ko://example.com/m/cmd/a\"\nb: !custom ko://example.com/m/cmd/a\nc: example.com/m/cmd/a\n# ko://example.com/m/cmd/a\nd: x ko://example.com/m/cmd/a\n"},
		{name: "wide characters before", in: "é: [ü, ko://example.com/m/cmd/a]\n",
			want: replaced("é: [ü, ko://example.com/m/cmd/a]\n", "cmd/a")},
		{name: "no final newline", in: "a: ko://example.com/m/cmd/a", want: replaced("a: ko://example.com/m/cmd/a", "cmd/a")},
		{name: "empty", in: "", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, fb, err := resolveString(t, "in.yaml", tt.in, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(res.Output); got != tt.want {
				t.Errorf("output:\n%q\nwant:\n%q", got, tt.want)
			}
			for ip, n := range fb.calls {
				if n != 1 {
					t.Errorf("%s built %d times, want once", ip, n)
				}
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	tests := []struct {
		name, in string
		want     string
		is       error
		built    bool // whether any build may run
	}{
		{name: "unknown package", in: "a: 1\n---\nb:\n  image: ko://example.org/nope\n", want: "in.yaml:4: ko://example.org/nope: package example.org/nope not found", built: true},
		{name: "not main", in: "x: [ko://example.com/m/cmd/a,\n  ko://example.com/m/lib]\n", want: "in.yaml:2: ko://example.com/m/lib: package example.com/m/lib is package lib, not main", built: true},
		{name: "no package", in: "a: b\nc: ko://\n", want: "in.yaml:2: ko://: ", is: ErrNoPackage},
		{name: "folded plain", in: "a: ko://example.com/m/cmd/a\n  more\n", want: "in.yaml:1: ", is: ErrNotLiteral},
		{name: "escaped", in: "a: 1\nb: \"ko:\\x2f/example.com/m/cmd/a\"\n", want: "in.yaml:2: ", is: ErrNotLiteral},
		{name: "two lines in a block", in: "a: |\n  ko://example.com/m/cmd/a\n  x\n", want: "in.yaml:1: ", is: ErrNotLiteral},
		{name: "syntax", in: "a: 1\n---\nb: [1,\n", want: "in.yaml:", is: ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, fb, err := resolveString(t, "in.yaml", tt.in, nil)
			if err == nil {
				t.Fatalf("no error; output %q", res.Output)
			}
			if !strings.Contains(err.Error(), tt.want) || tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q, want one containing %q (is %v)", err, tt.want, tt.is)
			}
			if len(res.Output) != 0 {
				t.Errorf("output %q after a failure, want none", res.Output)
			}
			if fb != nil && len(fb.calls) != 0 && !tt.built {
				t.Errorf("builds ran: %v", fb.calls)
			}
		})
	}
}

func TestResolveRefusesABadRef(t *testing.T) {
	plan, err := Scan([]Input{{Name: "f", Data: []byte("a: ko://x\n")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"", "a b", "x\n- y", "x # y"} {
		_, err := plan.Resolve(context.Background(), 1, func(context.Context, string) (string, error) { return ref, nil })
		if err == nil || !strings.Contains(err.Error(), "not an image reference") {
			t.Errorf("ref %q: error %v, want a refusal", ref, err)
		}
	}
}

// TestResolveConcurrency: each distinct package is built once, and no more
// than jobs builds run at once, but jobs of them do.
func TestResolveConcurrency(t *testing.T) {
	const jobs, n = 2, 6
	var in strings.Builder
	for i := range n {
		fmt.Fprintf(&in, "- ko://example.com/m/cmd/p%d\n- ko://example.com/m/cmd/p%d\n", i, i)
	}
	plan, err := Scan([]Input{{Name: "f", Data: []byte(in.String())}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(plan.ImportPaths()); got != n {
		t.Fatalf("%d import paths, want %d", got, n)
	}
	var inflight, most, started atomic.Int32
	full := make(chan struct{})
	fb := &fakeBuild{}
	res, err := plan.Resolve(context.Background(), jobs, func(ctx context.Context, ip string) (string, error) {
		c := inflight.Add(1)
		defer inflight.Add(-1)
		for m := most.Load(); c > m && !most.CompareAndSwap(m, c); m = most.Load() {
		}
		// The first jobs builds wait for each other: they must overlap.
		if s := started.Add(1); s <= jobs {
			if s == jobs {
				close(full)
			}
			<-full
		}
		return fb.build(ctx, ip)
	})
	if err != nil {
		t.Fatal(err)
	}
	if most.Load() != jobs {
		t.Errorf("at most %d builds at once, want %d", most.Load(), jobs)
	}
	for ip, c := range fb.calls {
		if c != 1 {
			t.Errorf("%s built %d times", ip, c)
		}
	}
	if len(res.Refs) != n || res.Refs[0] != fakeRef("example.com/m/cmd/p0") {
		t.Errorf("refs %v", res.Refs)
	}
}

func TestJoinFiles(t *testing.T) {
	inputs := []Input{
		{Name: "a.json", Data: []byte(`{"image": "ko://example.com/m/cmd/a"}`)},
		{Name: "b.yaml", Data: []byte("b: 1")},
		{Name: "c.yaml", Data: []byte("---\nc: ko://example.com/m/cmd/a\n")},
		{Name: "empty.yaml", Data: []byte("")},
	}
	plan, err := Scan(inputs, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := plan.Resolve(context.Background(), 1, (&fakeBuild{}).build)
	if err != nil {
		t.Fatal(err)
	}
	want := replaced("---\n{\"image\": \"ko://example.com/m/cmd/a\"}\n---\nb: 1\n---\nc: ko://example.com/m/cmd/a\n", "cmd/a")
	if string(res.Output) != want {
		t.Errorf("output:\n%q\nwant:\n%q", res.Output, want)
	}
}

func TestReadInputs(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{
		"a.yaml": "a", "b.yml": "b", "c.json": "c", "d.txt": "d", "sub/e.yaml": "e", "sub/deeper/f.json": "f",
	} {
		p := filepath.Join(dir, "cfg", name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(data), 0o644)
	}
	names := func(ins []Input) (out []string) {
		for _, in := range ins {
			out = append(out, in.Name+"="+string(in.Data))
		}
		return out
	}
	tests := []struct {
		name      string
		args      []string
		recursive bool
		want      []string
		err       string
	}{
		{name: "directory", args: []string{"cfg"}, want: []string{"cfg/a.yaml=a", "cfg/b.yml=b", "cfg/c.json=c"}},
		{name: "recursive", args: []string{"cfg"}, recursive: true, want: []string{"cfg/a.yaml=a", "cfg/b.yml=b", "cfg/c.json=c", "cfg/sub/deeper/f.json=f", "cfg/sub/e.yaml=e"}},
		{name: "a file of any name, then stdin", args: []string{"cfg/d.txt", "-"}, want: []string{"cfg/d.txt=d", "-=from stdin"}},
		{name: "missing", args: []string{"nope.yaml"}, err: "-f nope.yaml: no such file or directory"},
		{name: "none", err: ErrNoInput.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ins, err := ReadInputs(tt.args, tt.recursive, dir, strings.NewReader("from stdin"))
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := names(ins); !slices.Equal(got, tt.want) {
				t.Errorf("read %v, want %v", got, tt.want)
			}
		})
	}
}

// FuzzScanKeepsBytes: whatever Scan accepts, it gives back byte for byte
// when nothing is replaced.
func FuzzScanKeepsBytes(f *testing.F) {
	for _, s := range []string{"a: ko://x\n", "- |\n  ko://y\n- 'ko://z'\n", "a: 1\n", "# c\r\n---\r\nb: [x, 'y']\r\n", "{\"a\": 1}", "a: |\n  x\n---\n--- c\n", "%YAML 1.2\n---\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		plan, err := Scan([]Input{{Name: "f", Data: []byte(in)}}, nil)
		if err != nil {
			return
		}
		if len(plan.ImportPaths()) != 0 {
			// Replacing must not panic, and must leave no ko:// behind
			// where one was found.
			res, err := plan.Resolve(context.Background(), 1, func(context.Context, string) (string, error) { return "r@" + digest, nil })
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Scan([]Input{{Name: "f", Data: res.Output}}, nil); err != nil {
				t.Errorf("output %q of %q does not parse: %v", res.Output, in, err)
			}
			return
		}
		if got := string(plan.render(nil)); got != in {
			t.Errorf("render = %q, want %q", got, in)
		}
	})
}
