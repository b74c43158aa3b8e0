package cli

import (
	"testing"

	"github.com/spf13/pflag"

	"github.com/kilnbuild/kiln/internal/layer"
	"github.com/kilnbuild/kiln/internal/publish"
)

// TestCompressionAutoPicksByDestination: what --compression auto becomes
// for each destination kind kiln build's flags can name.
func TestCompressionAutoPicksByDestination(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  []string
		want layer.Algorithm
	}{
		{"the local store", nil, nil, layer.None},
		{"oci:", []string{"-o", "oci:out"}, nil, layer.None},
		{"oci-archive:", []string{"-o", "oci-archive:out.tar"}, nil, layer.Gzip},
		{"docker-archive:", []string{"-o", "docker-archive:out.tar"}, nil, layer.Gzip},
		{"loopback registry by IP", []string{"-o", "127.0.0.1:5000/app"}, nil, layer.None},
		{"loopback registry by name", []string{"-o", "localhost:5000/app"}, nil, layer.None},
		{"loopback registry from KO_DOCKER_REPO", nil, []string{"KO_DOCKER_REPO=[::1]:5000/app"}, layer.None},
		{"other registry", []string{"-o", "kiln.test/team/app"}, nil, layer.Gzip},
		{"other registry from KO_DOCKER_REPO", nil, []string{"KO_DOCKER_REPO=kiln.test/app"}, layer.Gzip},
		{"private address (another machine)", []string{"-o", "10.1.2.3:5000/app"}, nil, layer.Gzip},
		{"the store and --load", []string{"--load"}, nil, layer.None},
		{"other registry and --load", []string{"-o", "kiln.test/app", "--load"}, nil, layer.Gzip},
		{"-L (ko.local)", []string{"-L"}, nil, layer.None},
		{"loopback registry and --tarball", []string{"-o", "127.0.0.1:5000/app", "--tarball", "x.tar"}, nil, layer.Gzip},
		{"loopback registry and --oci-layout-path", []string{"-o", "127.0.0.1:5000/app", "--oci-layout-path", "lay"}, nil, layer.None},
		{"--push=false", []string{"--push=false"}, nil, layer.None},
		{"--push=false --tarball", []string{"--push=false", "--tarball", "x.tar"}, nil, layer.Gzip},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &buildFlags{}
			fl := pflag.NewFlagSet("build", pflag.ContinueOnError)
			f.register(fl)
			if err := fl.Parse(append([]string{"--compression", "auto"}, tc.args...)); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			inv := Invocation{Dir: dir, Env: append([]string{"KILN_STORE=" + dir + "/store", "KO_DOCKER_REPO="}, tc.env...)}
			d, err := publisherFor(inv, f)
			if err != nil {
				t.Fatal(err)
			}
			alg, err := layer.ParseAlgorithm(f.compression)
			if err != nil {
				t.Fatal(err)
			}
			got := layer.Compression{Algorithm: alg}.Resolve(publish.Nearby(d.pub))
			if got.Algorithm != tc.want {
				t.Errorf("kiln build --compression auto %v: %s, want %s", tc.args, got.Algorithm, tc.want)
			}
		})
	}
}
