package e2e

import (
	"bytes"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kilnbuild/kiln/internal/testutil"
)

// resolveFixture is a module with three main packages and a config tree
// that names them: several ko:// references, one of them twice, a
// multi-document file, a .json manifest, a .yml file (which ko skips in a
// directory and kiln reads) and labels for a selector.
var resolveFixture = map[string]string{
	"go.mod":            "module example.com/fx\n\ngo 1.22\n",
	"cmd/alpha/main.go": "package main\n\nfunc main() { println(\"alpha\") }\n",
	"cmd/beta/main.go":  "package main\n\nfunc main() { println(\"beta\") }\n",
	"cmd/gamma/main.go": "package main\n\nfunc main() { println(\"gamma\") }\n",
	"config/app.yaml": `# alpha and beta, with a Service between them.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: alpha
  labels: {app: x}
spec:
  template:
    spec:
      containers:
      - name: alpha
        image: ko://example.com/fx/cmd/alpha   # built once
        env:
        - {name: SELF, value: "ko://example.com/fx/cmd/alpha"}
---
apiVersion: v1
kind: Service
metadata: {name: alpha, labels: {app: y}}
spec: {ports: [{port: 80}]}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: beta
  labels: {app: y}
spec:
  template:
    spec:
      initContainers: [{name: init, image: 'ko://example.com/fx/cmd/alpha'}]
      containers: [{name: beta, image: ko://example.com/fx/cmd/beta}]
`,
	"config/job.json": `{"apiVersion": "batch/v1", "kind": "Job",
 "metadata": {"name": "gamma", "labels": {"app": "x"}},
 "spec": {"template": {"spec": {"containers": [{"name": "gamma", "image": "ko://example.com/fx/cmd/gamma"}]}}}}
`,
	"config/extra.yml": `apiVersion: v1
kind: Pod
metadata: {name: extra, labels: {app: x}}
spec: {containers: [{name: beta, image: ko://example.com/fx/cmd/beta}]}
`,
}

// resolved is what one tool's resolve gave, with its repository written
// REPO and digests DIGEST.
type resolved struct {
	repo   string   // KO_DOCKER_REPO
	raw    string   // stdout as printed
	docs   []any    // stdout parsed, generic
	refs   []string // the image references printed (but extra.yml's), as printed, sorted, distinct
	outDir string   // where {out} pointed
}

// resolveBoth runs ko resolve and kiln resolve on the fixture's config
// directory with args, each with its own KO_DOCKER_REPO under the case's
// name, for linux/amd64.
func (d *koDiff) resolveBoth(caseName string, args ...string) (ko, kl resolved) {
	t := d.t
	t.Helper()
	ko = resolved{repo: d.reg + "/ko/" + caseName, outDir: t.TempDir()}
	kl = resolved{repo: d.reg + "/kiln/" + caseName, outDir: t.TempDir()}
	argv := func(r resolved) []string {
		out := []string{"resolve", "-f", "config", "--platform", "linux/amd64"}
		for _, a := range args {
			out = append(out, strings.ReplaceAll(a, "{out}", r.outDir))
		}
		return out
	}
	cmd := exec.Command(d.ko, argv(ko)...)
	cmd.Dir, cmd.Env = d.dir, d.env(ko.repo)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ko resolve %v: %v\n%s", args, err, stderr.String())
	}
	ko.raw = stdout.String()
	kl.raw = kiln(t, d.dir, d.env(kl.repo), argv(kl)...)
	for _, r := range []*resolved{&ko, &kl} {
		r.docs = parseStream(t, d.generic(r.raw, r.repo))
		// References from extra.yml, which only kiln reads, are left out.
		docs := slices.DeleteFunc(parseStream(t, r.raw), func(d any) bool { return docName(d) == "extra" })
		for _, ref := range collectStrings(nil, docs) {
			if strings.HasPrefix(ref, r.repo) && !slices.Contains(r.refs, ref) {
				r.refs = append(r.refs, ref)
			}
		}
		slices.Sort(r.refs)
	}
	return ko, kl
}

// parseStream decodes every document of a YAML (or JSON) stream, skipping
// empty ones.
func parseStream(t *testing.T, s string) []any {
	t.Helper()
	var docs []any
	dec := yaml.NewDecoder(strings.NewReader(s))
	for {
		var v any
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("parsing the output: %v\n%s", err, s)
		}
		if v != nil {
			docs = append(docs, v)
		}
	}
}

// collectStrings appends every string value in v to out.
func collectStrings(out []string, v any) []string {
	switch v := v.(type) {
	case string:
		return append(out, v)
	case []any:
		for _, e := range v {
			out = collectStrings(out, e)
		}
	case map[string]any:
		for _, e := range v {
			out = collectStrings(out, e)
		}
	}
	return out
}

// docName is a document's metadata.name.
func docName(doc any) string {
	m, _ := doc.(map[string]any)
	md, _ := m["metadata"].(map[string]any)
	s, _ := md["name"].(string)
	return s
}

// withoutYML is kiln's documents without extra.yml's Pod, which ko does not
// read: it fails the test when kiln did not read it either (unless want is
// false, where a selector left it out).
func withoutYML(t *testing.T, docs []any, want bool) []any {
	t.Helper()
	out := slices.DeleteFunc(slices.Clone(docs), func(d any) bool { return docName(d) == "extra" })
	if got := len(out) != len(docs); got != want {
		t.Errorf("kiln read config/extra.yml: %v, want %v", got, want)
	}
	return out
}

// generic masks repo and digests in each reference.
func (d *koDiff) genericAll(refs []string, repo string) []string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = d.generic(r, repo)
	}
	return out
}

var sbomTag = regexp.MustCompile(`^sha256-[0-9a-f]{64}\.sbom$`)

// tags are the tags of every repository the references name, each as
// REPO/NAME:TAG, sorted.
func tags(t *testing.T, refs []string, repo string) []string {
	t.Helper()
	var out []string
	seen := map[string]bool{}
	for _, r := range refs {
		ref, err := name.ParseReference(r)
		if err != nil {
			t.Fatalf("%q: %v", r, err)
		}
		rn := ref.Context().Name()
		if seen[rn] {
			continue
		}
		seen[rn] = true
		ts, err := remote.List(ref.Context())
		if err != nil {
			t.Fatalf("listing the tags of %s: %v", rn, err)
		}
		for _, tag := range ts {
			// Each tool attaches an SBOM under sha256-<image digest>.sbom.
			tag = sbomTag.ReplaceAllString(tag, "sha256-HEX.sbom")
			out = append(out, strings.Replace(rn, repo, "REPO", 1)+":"+tag)
		}
	}
	slices.Sort(out)
	return out
}

// TestResolveDifferential: kiln resolve gives the same YAML, image names,
// tags and image configs as the real ko v0.19.1 resolve, apart from the
// digests, ko's re-formatting and the .yml files ko skips.
func TestResolveDifferential(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: not in -short")
	}
	d := newKoDiff(t)
	testutil.WriteFiles(t, d.dir, resolveFixture)

	for _, tt := range []struct {
		name string
		args []string
		yml  bool // whether kiln's output holds extra.yml's Pod
		push bool // whether the images are in the registry
	}{
		{"default", nil, true, true},
		{"bare", []string{"--bare"}, true, true},
		{"base-import-paths", []string{"-B"}, true, true},
		{"preserve-import-paths", []string{"-P"}, true, true},
		{"tags", []string{"-t", "v1,v2"}, true, true},
		{"tag-only", []string{"--tag-only", "-t", "v1"}, true, true},
		{"selector", []string{"-l", "app=y"}, false, true},
		{"selector-x", []string{"-l", "app=x"}, true, true},
		{"image-refs", []string{"--image-refs", "{out}/refs.txt"}, true, true},
		{"image-flags", []string{"--image-label", "k=v", "--image-annotation", "note=hi", "--image-user", "1000"}, true, true},
		{"no-push-tarball", []string{"--push=false", "--tarball", "{out}/images.tar"}, true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ko, kiln := d.resolveBoth(tt.name, tt.args...)
			if got := withoutYML(t, kiln.docs, tt.yml); !reflect.DeepEqual(ko.docs, got) {
				t.Errorf("documents differ:\nko:\n%s\nkiln:\n%s", ko.raw, kiln.raw)
			}
			koRefs, kilnRefs := d.genericAll(ko.refs, ko.repo), d.genericAll(kiln.refs, kiln.repo)
			if !reflect.DeepEqual(koRefs, kilnRefs) || len(koRefs) == 0 {
				t.Errorf("image references: ko %q, kiln %q", koRefs, kilnRefs)
			}
			if strings.Contains(kiln.raw, "ko://") || strings.Contains(ko.raw, "ko://") {
				t.Errorf("a ko:// reference is left:\nko:\n%s\nkiln:\n%s", ko.raw, kiln.raw)
			}
			if !tt.push {
				koTags := repoTags(t, filepath.Join(ko.outDir, "images.tar"), ko.repo)
				kilnTags := repoTags(t, filepath.Join(kiln.outDir, "images.tar"), kiln.repo)
				if !reflect.DeepEqual(koTags, kilnTags) || len(koTags) == 0 {
					t.Errorf("tarball RepoTags: ko %v, kiln %v", koTags, kilnTags)
				}
				return
			}
			if koTags, kilnTags := tags(t, ko.refs, ko.repo), tags(t, kiln.refs, kiln.repo); !reflect.DeepEqual(koTags, kilnTags) {
				t.Errorf("tags: ko %q, kiln %q", koTags, kilnTags)
			}
			// With --bare every image has the same name: pair them by
			// their entrypoints.
			koConfigs, kilnConfigs := d.configs(t, ko.refs), d.configs(t, kiln.refs)
			if !reflect.DeepEqual(koConfigs, kilnConfigs) {
				t.Errorf("image configs:\nko   %+v\nkiln %+v", koConfigs, kilnConfigs)
			}
			switch tt.name {
			case "image-flags":
				for _, c := range koConfigs {
					if c.User != "1000" || c.Labels["k"] != "v" || c.Annotations["note"] != "hi" {
						t.Errorf("ko did not apply the image flags: %+v", c)
					}
				}
			case "tag-only":
				for _, r := range koRefs {
					if !strings.HasSuffix(r, ":v1") {
						t.Errorf("--tag-only: ko printed %q, want REPO/NAME:v1", r)
					}
				}
			}
			if tt.name == "image-refs" {
				koFile, kilnFile := d.readGeneric(filepath.Join(ko.outDir, "refs.txt"), ko.repo), d.readGeneric(filepath.Join(kiln.outDir, "refs.txt"), kiln.repo)
				// ko records the references as its builds finish: sort.
				if sortedLines(koFile) != sortedLines(kilnFile) {
					t.Errorf("--image-refs: ko wrote\n%s\nkiln wrote\n%s", koFile, kilnFile)
				}
			}
		})
	}
}

// configs are the configs of refs' images sorted by entrypoint, without
// the base digest annotation, which differs by design (see
// TestKoFlagsDifferential) and must be there.
func (d *koDiff) configs(t *testing.T, refs []string) []koConfig {
	t.Helper()
	var out []koConfig
	for _, r := range refs {
		c := d.config(r)
		const baseDigest = "org.opencontainers.image.base.digest"
		if c.Annotations[baseDigest] == "" {
			t.Errorf("%s: no base digest annotation", r)
		}
		delete(c.Annotations, baseDigest)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b koConfig) int {
		return strings.Compare(strings.Join(a.Entrypoint, " "), strings.Join(b.Entrypoint, " "))
	})
	return out
}

func sortedLines(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}
