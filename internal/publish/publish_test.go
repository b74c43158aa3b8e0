package publish_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/kilnbuild/kiln/internal/publish"
	"github.com/kilnbuild/kiln/internal/testutil"
)

func TestParseDestination(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    publish.Destination
		wantErr string
	}{
		{in: "oci:out/layout", want: publish.Destination{Kind: "oci", Path: "out/layout"}},
		{in: "oci:/abs/layout", want: publish.Destination{Kind: "oci", Path: "/abs/layout"}},
		{in: "oci-archive:/tmp/app.tar", want: publish.Destination{Kind: "oci-archive", Path: "/tmp/app.tar"}},
		{in: "docker-archive:app.tar", want: publish.Destination{Kind: "docker-archive", Path: "app.tar"}},
		{in: "oci:weird:name", want: publish.Destination{Kind: "oci", Path: "weird:name"}},
		{in: "ghcr.io/acme/app", want: publish.Destination{Kind: "registry", Repo: "ghcr.io/acme/app"}},
		{in: "localhost:5000/team/app", want: publish.Destination{Kind: "registry", Repo: "localhost:5000/team/app"}},
		{in: "ubuntu", want: publish.Destination{Kind: "registry", Repo: "index.docker.io/library/ubuntu"}},
		{in: "oci:", wantErr: `output "oci:" names no path: use oci:PATH`},
		{in: "oci-archive:", wantErr: `use oci-archive:PATH`},
		{in: "docker-archive:", wantErr: `use docker-archive:PATH`},
		{in: "", wantErr: "is not a registry repository"},
		{in: "ghcr.io/acme/App", wantErr: "is not a registry repository"},
		{in: "ghcr.io/acme/app:v1", wantErr: "is not a registry repository"},
		{in: "ghcr.io/acme/app@sha256:" + strings.Repeat("a", 64), wantErr: "is not a registry repository"},
		{in: "tar:app.tar", wantErr: "is not a registry repository"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := publish.ParseDestination(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseDestination(%q) = %+v, %v; want error %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("ParseDestination(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
		})
	}
	// The name error stays classifiable.
	_, err := publish.ParseDestination("Bad/Name")
	var bad *name.ErrBadName
	if !errors.As(err, &bad) {
		t.Errorf("ParseDestination(Bad/Name) = %v, want a *name.ErrBadName inside", err)
	}
}

func randomImage(t testing.TB) v1.Image { return testutil.RandomImage(t, 1024, 2) }

func randomIndex(t testing.TB) v1.ImageIndex { return testutil.RandomIndex(t, 512, 1, 2) }

func TestLayout(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "new", "layout")
	p := &publish.ToLayout{Dir: dir}
	if err := p.Check(ctx); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if es, err := os.ReadDir(dir); err != nil || len(es) != 0 {
		t.Errorf("Check left %v in %s (%v)", es, dir, err)
	}
	img, idx := randomImage(t), randomIndex(t)
	d, err := p.Publish(ctx, img, "kiln.local/app", []string{"v1", "v2"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "kiln.local/app@" + testutil.Digest(t, img).String(); d.String() != want {
		t.Errorf("Publish = %s, want %s", d, want)
	}
	if _, err := p.Publish(ctx, idx, "kiln.local/multi", nil); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	ii, got := testutil.RefNames(t, dir)
	want := map[string]v1.Hash{
		"kiln.local/app:v1":       testutil.Digest(t, img),
		"kiln.local/app:v2":       testutil.Digest(t, img),
		"kiln.local/multi:latest": testutil.Digest(t, idx),
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ref names = %v, want %v", got, want)
	}
	if err := validate.Index(ii); err != nil {
		t.Errorf("validate.Index: %v", err)
	}
}

func TestCheckNotWritable(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		p    publish.Publisher
	}{
		{"layout under a file", &publish.ToLayout{Dir: filepath.Join(file, "layout")}},
		{"oci-archive in a missing directory", &publish.OCIArchive{File: filepath.Join(dir, "missing", "a.tar")}},
		{"oci-archive under a file", &publish.OCIArchive{File: filepath.Join(file, "a.tar")}},
		{"oci-archive that is a directory", &publish.OCIArchive{File: dir}},
		{"docker-archive in a missing directory", &publish.DockerArchive{File: filepath.Join(dir, "missing", "a.tar")}},
		{"docker-archive that is a directory", &publish.DockerArchive{File: dir}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.p.Check(ctx); !errors.Is(err, publish.ErrNotWritable) {
				t.Errorf("Check = %v, want ErrNotWritable", err)
			}
		})
	}
	for _, p := range []publish.Publisher{
		&publish.OCIArchive{File: filepath.Join(dir, "a.tar")},
		&publish.DockerArchive{File: filepath.Join(dir, "b.tar")},
	} {
		if err := p.Check(ctx); err != nil {
			t.Errorf("%T.Check = %v", p, err)
		}
	}
	if es, _ := os.ReadDir(dir); len(es) != 1 {
		t.Errorf("Check left files behind: %v", es)
	}
}

// fakePublisher records calls and returns canned results.
type fakePublisher struct {
	name     string
	digest   string
	checkErr error
	pubErr   error
	closeErr error
	calls    *[]string
}

func (f *fakePublisher) Check(context.Context) error {
	*f.calls = append(*f.calls, f.name+".Check")
	return f.checkErr
}

func (f *fakePublisher) Publish(_ context.Context, _ publish.Artifact, repo string, tags []string) (name.Digest, error) {
	*f.calls = append(*f.calls, fmt.Sprintf("%s.Publish(%s,%v)", f.name, repo, tags))
	if f.pubErr != nil {
		return name.Digest{}, f.pubErr
	}
	return name.NewDigest(f.digest)
}

func (f *fakePublisher) Close(context.Context) error {
	*f.calls = append(*f.calls, f.name+".Close")
	return f.closeErr
}

func TestMulti(t *testing.T) {
	ctx := context.Background()
	da := "example.com/a@sha256:" + strings.Repeat("a", 64)
	db := "example.com/b@sha256:" + strings.Repeat("b", 64)
	errA, errB := errors.New("a failed"), errors.New("b failed")

	t.Run("first digest", func(t *testing.T) {
		var calls []string
		m := publish.Multi{
			&fakePublisher{name: "a", digest: da, calls: &calls},
			&fakePublisher{name: "b", digest: db, calls: &calls},
		}
		if err := m.Check(ctx); err != nil {
			t.Fatal(err)
		}
		d, err := m.Publish(ctx, randomImage(t), "example.com/app", []string{"v1"})
		if err != nil || d.String() != da {
			t.Errorf("Publish = %s, %v; want %s", d, err, da)
		}
		if err := m.Close(ctx); err != nil {
			t.Fatal(err)
		}
		want := "[a.Check b.Check a.Publish(example.com/app,[v1]) b.Publish(example.com/app,[v1]) a.Close b.Close]"
		if fmt.Sprint(calls) != want {
			t.Errorf("calls = %v, want %s", calls, want)
		}
	})
	t.Run("errors", func(t *testing.T) {
		var calls []string
		m := publish.Multi{
			&fakePublisher{name: "a", digest: da, checkErr: errA, closeErr: errA, calls: &calls},
			&fakePublisher{name: "b", digest: db, pubErr: errB, closeErr: errB, calls: &calls},
			&fakePublisher{name: "c", digest: db, calls: &calls},
		}
		if err := m.Check(ctx); !errors.Is(err, errA) {
			t.Errorf("Check = %v, want %v", err, errA)
		}
		if _, err := m.Publish(ctx, randomImage(t), "r", nil); !errors.Is(err, errB) {
			t.Errorf("Publish = %v, want %v", err, errB)
		}
		err := m.Close(ctx)
		if !errors.Is(err, errA) || !errors.Is(err, errB) || err.Error() != "a failed\nb failed" {
			t.Errorf("Close = %q, want both errors joined", err)
		}
		want := "[a.Check a.Publish(r,[]) b.Publish(r,[]) a.Close b.Close c.Close]"
		if fmt.Sprint(calls) != want {
			t.Errorf("calls = %v, want %s", calls, want)
		}
	})
}

// Images from go-containerregistry's mutate are publishable as they are.
func TestArtifactIsStoreArtifact(t *testing.T) {
	img, err := mutate.Config(randomImage(t), v1.Config{Cmd: []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	var _ publish.Artifact = img
	var _ publish.Artifact = randomIndex(t)
}
