package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const fullExample = `# Every setting kiln reads.
defaultBaseImage: cgr.dev/chainguard/static:latest
baseImageOverrides:
  example.com/app/cmd/tool: alpine:3.20
defaultPlatforms:
- linux/amd64
- linux/arm64
defaultEnv:
- CGO_ENABLED=0
defaultFlags:
- -trimpath
defaultLdflags:
- -s -w
builds:
- id: app
  dir: .
  main: ./cmd/app
  env:
  - GOFLAGS=-mod=vendor
  flags:
  - -tags
  - netgo
  ldflags:
  - -X main.version={{.Env.VERSION}}
  linux_capabilities:
  - CAP_NET_BIND_SERVICE
  - chown
- id: tool
  main: ./cmd/tool
kiln:
  defaults:
    env:
    - TZ=UTC
    labels:
      org.opencontainers.image.source: https://example.com/app
    annotations:
      org.opencontainers.image.vendor: Example
    args: [serve]
    user: "65532"
    workdir: /srv
    files:
    - source: config/app.yaml
      path: /etc/app/app.yaml
      mode: "0640"
    compression: zstd
    compressionLevel: 3
    sign: true
    key: cosign.key
  builds:
    app:
      args: [serve, --port=8080]
    example.com/app/cmd/tool:
      user: root
      files:
      - source: bin/helper
        path: /usr/local/bin/helper
        mode: 0755
`

func TestParseFull(t *testing.T) {
	got, err := Parse(".ko.yaml", []byte(fullExample))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		DefaultBaseImage:   "cgr.dev/chainguard/static:latest",
		BaseImageOverrides: map[string]string{"example.com/app/cmd/tool": "alpine:3.20"},
		DefaultPlatforms:   []string{"linux/amd64", "linux/arm64"},
		DefaultEnv:         []string{"CGO_ENABLED=0"},
		DefaultFlags:       []string{"-trimpath"},
		DefaultLdflags:     []string{"-s -w"},
		Builds: []Build{{
			ID:                "app",
			Dir:               ".",
			Main:              "./cmd/app",
			Env:               []string{"GOFLAGS=-mod=vendor"},
			Flags:             []string{"-tags", "netgo"},
			Ldflags:           []string{"-X main.version={{.Env.VERSION}}"},
			LinuxCapabilities: []string{"CAP_NET_BIND_SERVICE", "chown"},
		}, {
			ID:   "tool",
			Main: "./cmd/tool",
		}},
		Kiln: Kiln{
			Defaults: Image{
				Env:              []string{"TZ=UTC"},
				Labels:           map[string]string{"org.opencontainers.image.source": "https://example.com/app"},
				Annotations:      map[string]string{"org.opencontainers.image.vendor": "Example"},
				Args:             []string{"serve"},
				User:             "65532",
				Workdir:          "/srv",
				Files:            []File{{Source: "config/app.yaml", Path: "/etc/app/app.yaml", Mode: "0640"}},
				Compression:      "zstd",
				CompressionLevel: 3,
				Sign:             true,
				Key:              "cosign.key",
			},
			Builds: map[string]Image{
				"app": {Args: []string{"serve", "--port=8080"}},
				"example.com/app/cmd/tool": {
					User:  "root",
					Files: []File{{Source: "bin/helper", Path: "/usr/local/bin/helper", Mode: "0755"}},
				},
			},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse:\n got %#v\nwant %#v", got, want)
	}
}

// TestParseKoForms covers what ko accepts beyond the plain schema: strings
// for lists, and scalars kept as written.
func TestParseKoForms(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       Config
	}{{
		name: "empty file",
		yaml: "",
	}, {
		name: "only comments",
		yaml: "# nothing here\n",
	}, {
		name: "document marker only",
		yaml: "---\n",
	}, {
		name: "top-level lists as strings split at spaces",
		yaml: "defaultPlatforms: linux/amd64 linux/arm64\ndefaultEnv: A=1 B=2\ndefaultFlags: -trimpath -v\ndefaultLdflags: -s -w\n",
		want: Config{
			DefaultPlatforms: []string{"linux/amd64", "linux/arm64"},
			DefaultEnv:       []string{"A=1", "B=2"},
			DefaultFlags:     []string{"-trimpath", "-v"},
			DefaultLdflags:   []string{"-s", "-w"},
		},
	}, {
		name: "build lists as strings",
		yaml: "builds:\n- env: A=1 B\n  ldflags: -s -w\n  flags: -tags netgo\n  linux_capabilities: net_bind_service chown\n",
		want: Config{Builds: []Build{{
			Env:               []string{"A=1 B"},
			Ldflags:           []string{"-s -w"},
			Flags:             []string{"-tags", "netgo"},
			LinuxCapabilities: []string{"net_bind_service", "chown"},
		}}},
	}, {
		name: "setcap clauses",
		yaml: "builds:\n- linux_capabilities: bpf,perfmon,net_admin=ep\n",
		want: Config{Builds: []Build{{LinuxCapabilities: []string{"bpf,perfmon,net_admin=ep"}}}},
	}, {
		name: "numbers and booleans keep their text where strings are wanted",
		yaml: "defaultBaseImage: 0x10\nkiln:\n  defaults:\n    user: 0644\n    labels: {version: 1.10, beta: true}\n    args: [1.50, 007]\n    files:\n    - {source: a, path: /a, mode: 0o600}\n",
		want: Config{
			DefaultBaseImage: "0x10",
			Kiln: Kiln{Defaults: Image{
				User:   "0644",
				Labels: map[string]string{"version": "1.10", "beta": "true"},
				Args:   []string{"1.50", "007"},
				Files:  []File{{Source: "a", Path: "/a", Mode: "0o600"}},
			}},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse("test.yaml", []byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("Parse:\n got %#v\nwant %#v", *got, tc.want)
			}
		})
	}
}

func TestParseAnchors(t *testing.T) {
	const in = "kiln:\n  defaults: &common\n    env: [A=1]\n  builds:\n    app:\n      <<: *common\n      user: app\n    other: *common\n"
	got, err := Parse("test.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := Kiln{
		Defaults: Image{Env: []string{"A=1"}},
		Builds: map[string]Image{
			"app":   {Env: []string{"A=1"}, User: "app"},
			"other": {Env: []string{"A=1"}},
		},
	}
	if !reflect.DeepEqual(got.Kiln, want) {
		t.Errorf("Parse:\n got %#v\nwant %#v", got.Kiln, want)
	}
}

func TestParseErrors(t *testing.T) {
	const name = "cfg/.ko.yaml"
	for _, tc := range []struct {
		name string
		yaml string
		at   string // "LINE" or "LINE:COL"; "" for no position
		want string // part of the message naming the problem
	}{
		{"syntax error", "defaultBaseImage: [a\n", "1", "invalid YAML"},
		{"tab indentation", "builds:\n\t- id: a\n", "2", "invalid YAML"},
		{"duplicate key", "defaultBaseImage: a\ndefaultBaseImage: b\n", "2", `"defaultBaseImage" already defined`},
		{"unknown top-level key", "defaultEnv: [A=1]\n\ndefaultBaseImag: foo\n", "3:1", `unknown key "defaultBaseImag"; did you mean "defaultBaseImage"?`},
		{"unknown key, wrong case", "DefaultBaseImage: foo\n", "1", `did you mean "defaultBaseImage"?`},
		{"Path is not a key", "Path: /x\n", "1", `unknown key "Path"`},
		{"unknown key in builds", "builds:\n- id: a\n  mian: ./cmd\n", "3", `builds[0]: unknown key "mian"; did you mean "main"?`},
		{"unknown key under kiln", "kiln:\n  default:\n    user: x\n", "2", `kiln: unknown key "default"; did you mean "defaults"?`},
		{"image setting directly under kiln", "kiln:\n  user: x\n", "2", "image settings go under kiln.defaults"},
		{"unknown key in kiln build", "kiln:\n  builds:\n    example.com/app:\n      usr: x\n", "4", `kiln.builds["example.com/app"]: unknown key "usr"`},
		{"unknown key in files", "kiln:\n  defaults:\n    files:\n    - source: a\n      path: /a\n      owner: root\n", "6", `kiln.defaults.files[0]: unknown key "owner"`},
		{"string for a kiln list", "kiln:\n  defaults:\n    args: serve\n", "3", "kiln.defaults.args: got a string, want a list"},
		{"mapping for a list", "defaultPlatforms:\n  linux: amd64\n", "2:3", "defaultPlatforms: got a mapping, want a list"},
		{"list for a string", "builds:\n- id: [a, b]\n", "2", "builds[0].id: got a list, want a string"},
		{"string for an integer", "kiln:\n  defaults:\n    compressionLevel: fast\n", "3", "kiln.defaults.compressionLevel: got a string, want an integer"},
		{"string for a boolean", "kiln:\n  defaults:\n    sign: yes\n", "3", "kiln.defaults.sign: got a string, want a boolean"},
		{"list for builds", "builds: {id: a}\n", "1", "builds: got a mapping, want a list"},
		{"scalar document", "just a string\n", "1", "top level: got a string, want a mapping"},
		{"second document", "defaultBaseImage: a\n---\ndefaultBaseImage: b\n", "3", "a second YAML document"},
		{"bad default env", "defaultEnv:\n- CGO_ENABLED=0\n- GOFLAGS\n", "3", `defaultEnv[1]: "GOFLAGS" is not KEY=VALUE`},
		{"bad build env", "builds:\n- id: a\n  env:\n  - =x\n", "4", `builds[0].env[0]: "=x" has an empty name`},
		{"bad kiln env", "kiln:\n  builds:\n    app:\n      env: [TZ]\n", "4", `kiln.builds.app.env[0]: "TZ" is not KEY=VALUE`},
		{"bad file mode", "kiln:\n  defaults:\n    files:\n    - source: a\n      path: /a\n      mode: \"0844\"\n", "6", `file mode "0844" is not an octal mode`},
		{"file mode too large", "kiln:\n  defaults:\n    files:\n    - {source: a, path: /a, mode: \"17777\"}\n", "4", `file mode "17777"`},
		{"relative file path", "kiln:\n  defaults:\n    files:\n    - source: a\n      path: etc/a\n", "5:13", `kiln.defaults.files[0].path: "etc/a" is not an absolute path`},
		{"file without source", "kiln:\n  defaults:\n    files:\n    - path: /a\n", "4:7", "kiln.defaults.files[0]: source is missing"},
		{"file without path", "kiln:\n  defaults:\n    files:\n    - source: a\n", "4", "kiln.defaults.files[0]: path is missing"},
		{"unknown compression", "kiln:\n  defaults:\n    compression: brotli\n", "3", `unknown compression "brotli"; use gzip, zstd, none or auto`},
		{"none with a level", "kiln:\n  defaults:\n    compression: none\n    compressionLevel: 3\n", "4", "compression none takes no level (got 3)"},
		{"auto level too high", "kiln:\n  defaults:\n    compression: auto\n    compressionLevel: 10\n", "4", "compression level 10 is out of range for auto; use 1 to 9"},
		{"gzip level too high", "kiln:\n  defaults:\n    compression: gzip\n    compressionLevel: 10\n", "4", "compression level 10 is out of range for gzip"},
		{"default gzip level too high", "kiln:\n  defaults:\n    compressionLevel: 12\n", "3", "out of range for gzip (the default compression)"},
		{"zstd level too high", "kiln:\n  builds:\n    app:\n      compression: zstd\n      compressionLevel: 23\n", "5", "compression level 23 is out of range for zstd; use 1 to 22"},
		{"negative level", "kiln:\n  defaults:\n    compression: zstd\n    compressionLevel: -1\n", "4", "compression level -1 is out of range"},
		{"inherited level does not fit", "kiln:\n  defaults:\n    compression: zstd\n    compressionLevel: 15\n  builds:\n    app:\n      compression: gzip\n", "7", `kiln.builds.app.compression: compression level 15 is out of range for gzip`},
		{"duplicate build id", "builds:\n- id: app\n  main: ./a\n- id: app\n  main: ./b\n", "4", `builds[1].id: duplicate build id "app" (first used by builds[0])`},
		{"unknown capability", "builds:\n- id: a\n  linux_capabilities:\n  - net_bind_service\n  - cap_net_bind\n", "5", `unknown capability "cap_net_bind"`},
		{"unknown capability in a string", "builds:\n- linux_capabilities: chown nope\n", "2", `builds[0].linux_capabilities[1]: unknown capability "nope"`},
		{"bad capability flag", "builds:\n- linux_capabilities: [bpf=x]\n", "2", `unknown flag 'x'`},
		{"integer overflow", "kiln:\n  defaults:\n    compressionLevel: 99999999999999999999999\n", "3", "out of range for an integer"},
		{"unknown key holding an anchor", "defaultEnv: [A=1]\nx-common: &common\n  env: [A=1]\n", "2", `unknown key "x-common"`},
		{"unknown key in a merged mapping", "kiln:\n  builds:\n    app:\n      <<: {user: x, bogus: 1}\n", "4", `kiln.builds.app: unknown key "bogus"`},
		{"go-yaml panics on a tagged list", "defaultEnv: !!binary aGVsbG8=\n", "", "cannot read this YAML"},
		{"empty label key", "kiln:\n  defaults:\n    labels: {\"\": x}\n", "3", "kiln.defaults.labels: a key is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse(name, []byte(tc.yaml))
			if err == nil {
				t.Fatalf("Parse: got %+v, want an error", c)
			}
			msg := err.Error()
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(%q, ErrInvalid) = false", msg)
			}
			if strings.ContainsAny(msg, "\r\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			prefix := name + ":" + tc.at + ":"
			if tc.at == "" {
				prefix = name + ": "
			}
			if !strings.HasPrefix(msg, prefix) {
				t.Errorf("error %q does not start with %q", msg, prefix)
			}
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not contain %q", msg, tc.want)
			}
		})
	}
}

func TestErrorFormat(t *testing.T) {
	for _, tc := range []struct {
		err  Error
		want string
	}{
		{Error{File: "a.yaml", Line: 3, Col: 1, Msg: "m"}, "a.yaml:3:1: m"},
		{Error{File: "a.yaml", Line: 3, Msg: "m"}, "a.yaml:3: m"},
		{Error{File: "a.yaml", Msg: "m"}, "a.yaml: m"},
		{Error{Line: 3, Col: 2, Msg: "m"}, "3:2: m"},
		{Error{Msg: "two\nlines"}, "two lines"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("%+v.Error() = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestImageFor(t *testing.T) {
	c := &Config{Kiln: Kiln{
		Defaults: Image{
			Env:              []string{"A=default"},
			Labels:           map[string]string{"l": "default", "only-default": "x"},
			Annotations:      map[string]string{"a": "default"},
			Args:             []string{"default"},
			User:             "65532",
			Workdir:          "/",
			Files:            []File{{Source: "d", Path: "/d"}},
			Compression:      "gzip",
			CompressionLevel: 6,
		},
		Builds: map[string]Image{
			"app": {
				Env:    []string{"B=id"},
				Labels: map[string]string{"l": "id"},
				Args:   []string{"id"},
				User:   "app",
				Files:  []File{{Source: "i", Path: "/i"}},
				Sign:   true,
			},
			"example.com/cmd/app": {
				Env:         []string{"C=path"},
				Labels:      map[string]string{"l": "path"},
				Annotations: map[string]string{"a": "path"},
				Workdir:     "/srv",
				Files:       []File{{Source: "p", Path: "/p"}},
				Compression: "zstd",
				Key:         "k",
			},
			"example.com/cmd/noargs": {Args: []string{}},
		},
	}}
	defaults := c.Kiln.Defaults
	for _, tc := range []struct {
		name           string
		id, importPath string
		want           Image
	}{{
		name: "no entry: the defaults",
		id:   "other", importPath: "example.com/other",
		want: defaults,
	}, {
		name: "by id",
		id:   "app", importPath: "example.com/elsewhere",
		want: Image{
			Env:              []string{"A=default", "B=id"},
			Labels:           map[string]string{"l": "id", "only-default": "x"},
			Annotations:      map[string]string{"a": "default"},
			Args:             []string{"id"},
			User:             "app",
			Workdir:          "/",
			Files:            []File{{Source: "d", Path: "/d"}, {Source: "i", Path: "/i"}},
			Compression:      "gzip",
			CompressionLevel: 6,
			Sign:             true,
		},
	}, {
		name: "by id and import path, import path last",
		id:   "app", importPath: "example.com/cmd/app",
		want: Image{
			Env:              []string{"A=default", "B=id", "C=path"},
			Labels:           map[string]string{"l": "path", "only-default": "x"},
			Annotations:      map[string]string{"a": "path"},
			Args:             []string{"id"},
			User:             "app",
			Workdir:          "/srv",
			Files:            []File{{Source: "d", Path: "/d"}, {Source: "i", Path: "/i"}, {Source: "p", Path: "/p"}},
			Compression:      "zstd",
			CompressionLevel: 6,
			Sign:             true,
			Key:              "k",
		},
	}, {
		name:       "an empty args list does not clear args",
		importPath: "example.com/cmd/noargs",
		want:       defaults,
	}, {
		name: "id equal to the import path applies once",
		id:   "app", importPath: "app",
		want: Image{
			Env:              []string{"A=default", "B=id"},
			Labels:           map[string]string{"l": "id", "only-default": "x"},
			Annotations:      map[string]string{"a": "default"},
			Args:             []string{"id"},
			User:             "app",
			Workdir:          "/",
			Files:            []File{{Source: "d", Path: "/d"}, {Source: "i", Path: "/i"}},
			Compression:      "gzip",
			CompressionLevel: 6,
			Sign:             true,
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := c.ImageFor(tc.id, tc.importPath)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ImageFor(%q, %q):\n got %#v\nwant %#v", tc.id, tc.importPath, got, tc.want)
			}
		})
	}

	// The result must not alias the config.
	img := c.ImageFor("app", "example.com/cmd/app")
	img.Labels["l"] = "changed"
	img.Env[0] = "changed"
	img.Args[0] = "changed"
	if c.Kiln.Defaults.Labels["l"] != "default" || c.Kiln.Defaults.Env[0] != "A=default" || c.Kiln.Builds["app"].Args[0] != "id" {
		t.Error("ImageFor returned maps or slices shared with the config")
	}

	if got := (&Config{}).ImageFor("a", "b"); !reflect.DeepEqual(got, Image{}) {
		t.Errorf("empty config: ImageFor = %#v, want zero Image", got)
	}
}

func TestFileMode(t *testing.T) {
	for _, tc := range []struct {
		mode    string
		want    fs.FileMode
		wantErr bool
	}{
		{"", 0o644, false},
		{"0644", 0o644, false},
		{"755", 0o755, false},
		{"0o600", 0o600, false},
		{"0", 0, false},
		{"04755", fs.ModeSetuid | 0o755, false},
		{"02755", fs.ModeSetgid | 0o755, false},
		{"01777", fs.ModeSticky | 0o777, false},
		{"07777", fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky | 0o777, false},
		{"010000", 0, true},
		{"0844", 0, true},
		{"rw-r--r--", 0, true},
		{"-0644", 0, true},
		{"0x1a4", 0, true},
	} {
		got, err := File{Mode: tc.mode}.FileMode()
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("File{Mode: %q}.FileMode() = %v, %v; want %v, error %v", tc.mode, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestFind(t *testing.T) {
	root := t.TempDir()
	withConfig := filepath.Join(root, "with")
	withYml := filepath.Join(root, "yml")
	without := filepath.Join(root, "without")
	for _, dir := range []string{withConfig, withYml, without} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p string) {
		if err := os.WriteFile(p, []byte("defaultBaseImage: x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(withConfig, ".ko.yaml"))
	write(filepath.Join(withYml, ".ko.yml"))
	dirNamedConfig := filepath.Join(root, "dirnamed")
	if err := os.MkdirAll(filepath.Join(dirNamedConfig, ".ko.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}
	custom := filepath.Join(root, "custom.yaml")
	write(custom)

	for _, tc := range []struct {
		name            string
		configPath, dir string
		want            string
		wantErr         bool
	}{
		{name: "KO_CONFIG_PATH is a file", configPath: custom, dir: withConfig, want: custom},
		{name: "KO_CONFIG_PATH is a directory", configPath: withConfig, dir: without, want: filepath.Join(withConfig, ".ko.yaml")},
		{name: "KO_CONFIG_PATH does not exist", configPath: filepath.Join(root, "missing.yaml"), dir: withConfig, wantErr: true},
		{name: "KO_CONFIG_PATH is a directory without .ko.yaml", configPath: without, dir: withConfig, wantErr: true},
		{name: "KO_CONFIG_PATH is a directory whose .ko.yaml is a directory", configPath: dirNamedConfig, dir: withConfig, wantErr: true},
		{name: ".ko.yaml in dir is a directory", dir: dirNamedConfig, wantErr: true},
		{name: ".ko.yaml in dir", dir: withConfig, want: filepath.Join(withConfig, ".ko.yaml")},
		{name: ".ko.yml in dir", dir: withYml, want: filepath.Join(withYml, ".ko.yml")},
		{name: "no config", dir: without, want: ""},
		{name: "dir does not exist", dir: filepath.Join(root, "nope"), want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Find(tc.configPath, tc.dir)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("Find(%q, %q) = %q, want an error", tc.configPath, tc.dir, got)
				}
				if !errors.Is(err, ErrInvalid) || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "KO_CONFIG_PATH") {
					t.Errorf("Find error %q: want a one-line ErrInvalid naming KO_CONFIG_PATH", err)
				}
				if got != "" {
					t.Errorf("Find returned %q with an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("Find(%q, %q) = %q, %v; want %q", tc.configPath, tc.dir, got, err, tc.want)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, ".ko.yaml")
	if err := os.WriteFile(p, []byte("defaultBaseImage: alpine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Path != p || c.Dir != dir || c.DefaultBaseImage != "alpine" {
		t.Errorf("Load(%q) = Path %q, Dir %q, DefaultBaseImage %q", p, c.Path, c.Dir, c.DefaultBaseImage)
	}

	if err := os.WriteFile(p, []byte("defaultBaseImage: alpine\nbogus: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), p+":2:1: ") {
		t.Errorf("Load of a bad file: got %v, want an ErrInvalid at %s:2:1", err, p)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing file: got %v, want fs.ErrNotExist", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		fullExample,
		"",
		"---\n---\n",
		"a: &x [*x]\n",
		"builds: &b\n- *b\n",
		"kiln:\n  builds:\n    ? [a, b]\n    : {user: x}\n",
		"defaultEnv: !!binary aGVsbG8=\n",
		"builds:\n- linux_capabilities: =ep -all+p\n",
		"kiln: {defaults: {files: [{source: a, path: /a, mode: 0o7777}]}}\n",
		"defaultPlatforms: |\n  linux/amd64\n  linux/arm64\n",
		"defaultBaseImage: \"\\u0000\\n\"\n",
		"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n",
		"{a: {b: {c: {d: {e: {f: }}}}}}\n",
		"%YAML 1.2\n---\ndefaultBaseImage: x\n",
		"<<: {defaultBaseImage: x}\n",
		"? |\n  key\n: value\n",
		"kiln:\n  builds:\n    \"\\n\": {env: [\"\\n\"]}\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := Parse("fuzz.yaml", data)
		if err == nil {
			return
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("error %q does not match ErrInvalid", err)
		}
		if strings.ContainsAny(err.Error(), "\r\n") {
			t.Errorf("error is not one line: %q", err)
		}
	})
}

// none and auto are compressions .ko.yaml can name; auto takes gzip's levels.
func TestParseNoneAndAuto(t *testing.T) {
	for _, src := range []string{
		"kiln:\n  defaults:\n    compression: none\n",
		"kiln:\n  defaults:\n    compression: auto\n",
		"kiln:\n  defaults:\n    compression: auto\n    compressionLevel: 9\n",
		"kiln:\n  defaults:\n    compression: gzip\n    compressionLevel: 9\n  builds:\n    app:\n      compression: auto\n",
	} {
		if _, err := Parse(".ko.yaml", []byte(src)); err != nil {
			t.Errorf("%q: %v", src, err)
		}
	}
}
