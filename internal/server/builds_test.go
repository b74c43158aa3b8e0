package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/kilnbuild/kiln/internal/registry"
	"github.com/kilnbuild/kiln/internal/request"
	"github.com/kilnbuild/kiln/internal/service"
	"github.com/kilnbuild/kiln/internal/store"
	"github.com/kilnbuild/kiln/internal/testutil"
)

// TestBuilderCheck: every bad build field is the client's mistake
// (service.ErrInvalid, answered 400), found before anything runs.
func TestBuilderCheck(t *testing.T) {
	b := &builder{registry: "127.0.0.1:5000"}
	keyed := &builder{registry: "127.0.0.1:5000", key: request.Key{Path: "/k/cosign.key"}}
	for _, c := range []struct {
		name, raw string
		b         *builder
		want      string // "" is accepted
	}{
		{name: "ok", raw: `{"packages":["./cmd/app"],"platforms":["linux/amd64"]}`},
		{name: "ok with sign and a key", raw: `{"packages":["./cmd/app"],"sign":true}`, b: keyed},
		{name: "ok with a registry output", raw: `{"packages":["./cmd/app"],"output":"127.0.0.1:5001/team"}`},
		{name: "unknown field", raw: `{"packages":["./cmd/app"],"toolexec":"/bin/sh"}`, want: "unknown field"},
		{name: "not an object", raw: `["./cmd/app"]`, want: "cannot unmarshal"},
		{name: "no packages", raw: `{}`, want: "no packages"},
		{name: "bad platform", raw: `{"packages":["./a"],"platforms":["linux/nosucharch"]}`, want: "nosucharch"},
		{name: "sign without key", raw: `{"packages":["./a"],"sign":true}`, want: "no signing key"},
		{name: "output oci layout", raw: `{"packages":["./a"],"output":"oci:/tmp/out"}`, want: "give a registry repository"},
		{name: "output a directory", raw: `{"packages":["./a"],"output":"./out"}`, want: "give a registry repository"},
		{name: "output a parent directory", raw: `{"packages":["./a"],"output":"../out"}`, want: "give a registry repository"},
		{name: "output an absolute path", raw: `{"packages":["./a"],"output":"/srv/out"}`, want: "give a registry repository"},
		{name: "output upper case", raw: `{"packages":["./a"],"output":"127.0.0.1:5001/Team"}`, want: "output"},
		{name: "two namings", raw: `{"packages":["./a"],"bare":true,"preserveImportPaths":true}`, want: "exclude each other"},
		{name: "bad compression", raw: `{"packages":["./a"],"compression":"lz4"}`, want: "lz4"},
		{name: "bad tag", raw: `{"packages":["./a"],"tags":["a b"]}`, want: "not a valid tag"},
		{name: "negative jobs", raw: `{"packages":["./a"],"jobs":-1}`, want: "jobs"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := b
			if c.b != nil {
				r = c.b
			}
			pkgs, err := r.Check(json.RawMessage(c.raw))
			if c.want == "" {
				if err != nil || len(pkgs) == 0 {
					t.Fatalf("Check = %v, %v; want the packages", pkgs, err)
				}
				return
			}
			if !errors.Is(err, service.ErrInvalid) {
				t.Fatalf("Check = %v; want service.ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("Check = %q; want it to say %q", err, c.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("Check error is more than one line: %q", err)
			}
		})
	}
}

// TestBuilderRunRefusesBaseOutsideTree: a source cannot make the server
// read an OCI layout from its own disk; the refusal is the client's.
func TestBuilderRunRefusesBaseOutsideTree(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFiles(t, dir, testutil.HelloModule)
	outside := t.TempDir() // a sibling of dir
	b := &builder{registry: "127.0.0.1:5000"}
	for _, c := range []struct{ name, raw string }{
		{"request base", `{"packages":["./cmd/hello"],"base":"oci:` + outside + `"}`},
		{"request base by ..", `{"packages":["./cmd/hello"],"base":"oci:../` + filepath.Base(outside) + `"}`},
		{"config base", `{"packages":["./cmd/hello"]}`}, // .ko.yaml below
		{"package outside", `{"packages":["../../etc"]}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "config base" {
				testutil.WriteFiles(t, dir, map[string]string{".ko.yaml": "defaultBaseImage: oci:" + outside + "\n"})
				t.Cleanup(func() { os.Remove(filepath.Join(dir, ".ko.yaml")) })
			}
			var log strings.Builder
			_, _, err := b.Run(context.Background(), json.RawMessage(c.raw), dir, &log)
			if !errors.Is(err, service.ErrInvalid) {
				t.Fatalf("Run = %v; want service.ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), "outside the source tree") {
				t.Errorf("Run = %q; want it to say the file is outside the source tree", err)
			}
		})
	}
}

func TestBuildEnv(t *testing.T) {
	env := buildEnv([]string{
		"PATH=/usr/bin", "HOME=/h", "GOFLAGS=-toolexec=/bin/evil", "GOCACHE=/old", "GOMODCACHE=/oldmod",
		"GOWORK=/w/go.work", "GIT_CONFIG_GLOBAL=/h/.gitconfig", "GIT_CONFIG_NOSYSTEM=0", "GOPROXY=http://127.0.0.1:1",
		"GIT_CEILING_DIRECTORIES=/",
	}, "/data/gocache", "/data/gomodcache", "/data/builds")
	want := []string{
		"PATH=/usr/bin", "HOME=/h", "GOPROXY=http://127.0.0.1:1",
		"GOCACHE=/data/gocache", "GOMODCACHE=/data/gomodcache", "GOWORK=off", "GOFLAGS=-buildvcs=false",
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=" + os.DevNull, "GIT_CEILING_DIRECTORIES=/data/builds",
	}
	if !slices.Equal(env, want) {
		t.Errorf("buildEnv =\n%q\nwant\n%q", env, want)
	}
}

func TestRegistryName(t *testing.T) {
	for _, c := range []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}, "127.0.0.1:8080"},
		{&net.TCPAddr{IP: net.IPv4zero, Port: 8080}, "127.0.0.1:8080"},
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 80}, "127.0.0.1:80"},
		{&net.TCPAddr{Port: 9}, "127.0.0.1:9"},
		{&net.TCPAddr{IP: net.IPv6loopback, Port: 5000}, "[::1]:5000"},
		{&net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 443}, "10.1.2.3:443"},
		{&net.UnixAddr{Name: "/run/kiln.sock", Net: "unix"}, "/run/kiln.sock"},
	} {
		if got := registryName(c.addr); got != c.want {
			t.Errorf("registryName(%v) = %q, want %q", c.addr, got, c.want)
		}
	}
}

// TestInProcess pushes and pulls through inProcess against a real
// registry that needs a token: HEAD answers carry the blob's size, the
// token is presented, and what comes back validates.
func TestInProcess(t *testing.T) {
	layout, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const token = "0123456789abcdef0123456789abcdef"
	reg, err := registry.New(layout.Repositories(), registry.Options{Access: registry.Access{Tokens: []string{token}, Private: []string{"*"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	tr := inProcess{h: reg, token: token}
	img, err := random.Image(3000, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference("127.0.0.1:5000/team/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithTransport(tr)); err != nil {
		t.Fatalf("push in process: %v", err)
	}
	if err := remote.Write(ref, img, remote.WithTransport(inProcess{h: reg})); err == nil {
		t.Error("a push without the token was let through")
	}
	client := &http.Client{Transport: tr}
	layers, _ := img.Layers()
	for _, l := range layers {
		d, _ := l.Digest()
		size, _ := l.Size()
		resp, err := client.Head("http://127.0.0.1:5000/v2/team/app/blobs/" + d.String())
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || resp.ContentLength != size {
			t.Errorf("HEAD %s = %d, %d bytes; want 200, %d bytes", d, resp.StatusCode, resp.ContentLength, size)
		}
		if n, _ := io.Copy(io.Discard, resp.Body); n != 0 {
			t.Errorf("HEAD %s has a body of %d bytes", d, n)
		}
		resp.Body.Close()
	}
	desc, err := remote.Head(ref, remote.WithTransport(tr))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := img.RawManifest()
	if want, _ := img.Digest(); desc.Digest != want || desc.Size != int64(len(raw)) {
		t.Errorf("HEAD manifest = %s %d bytes; want %s %d", desc.Digest, desc.Size, want, len(raw))
	}
	got, err := remote.Image(ref, remote.WithTransport(tr))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(got); err != nil {
		t.Errorf("the image pulled in process does not validate: %v", err)
	}
}

// TestHandlerReadyz: /readyz answers what Ready says.
func TestHandlerReadyz(t *testing.T) {
	var notReady error
	srv := httptest.NewServer(Handler(Options{Ready: func(context.Context) error { return notReady }}))
	defer srv.Close()
	for _, c := range []struct {
		err  error
		want int
	}{{nil, 200}, {errors.New("build workers are not running"), 503}} {
		notReady = c.err
		resp, err := http.Get(srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("readyz with %v = %d %q, want %d", c.err, resp.StatusCode, body, c.want)
		}
		if c.err != nil && !strings.Contains(string(body), c.err.Error()) {
			t.Errorf("readyz body %q does not say why", body)
		}
	}
}
