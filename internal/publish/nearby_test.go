package publish_test

import (
	"testing"

	"github.com/kilnbuild/kiln/internal/publish"
)

func TestLoopbackRegistry(t *testing.T) {
	for _, tc := range []struct {
		repo string
		want bool
	}{
		{"localhost/app", true},
		{"localhost:5000/team/app", true},
		{"registry.localhost:5000/app", true},
		{"127.0.0.1:5000/app", true},
		{"127.1.2.3/app", true},
		{"[::1]:5000/app", true},
		{"127.0.0.1:5000", true}, // a bare registry, as the build service names its own
		{"kiln.test/app", false},
		{"kiln.test:5000/app", false},
		{"localhost.kiln.test/app", false},
		{"10.0.0.7:5000/app", false},    // private, but another machine
		{"192.168.1.2:5000/app", false}, // likewise
		{"[::2]:5000/app", false},
		{"ko.local/app", false}, // a name, not a registry on this machine (see Load)
		{"app", false},          // Docker's default registry
		{"UPPER/app", false},    // not a repository
		{"", false},
	} {
		if got := publish.LoopbackRegistry(tc.repo); got != tc.want {
			t.Errorf("LoopbackRegistry(%q) = %v, want %v", tc.repo, got, tc.want)
		}
	}
}

func TestNearby(t *testing.T) {
	loop := &publish.ToRegistry{Repo: "127.0.0.1:5000/app"}
	far := &publish.ToRegistry{Repo: "kiln.test/app"}
	for _, tc := range []struct {
		name string
		p    publish.Publisher
		want bool
	}{
		{"layout (oci:, the store)", &publish.ToLayout{Dir: "x"}, true},
		{"loopback registry", loop, true},
		{"other registry", far, false},
		{"oci-archive", &publish.OCIArchive{File: "x.tar"}, false},
		{"docker-archive", &publish.DockerArchive{File: "x.tar"}, false},
		{"load", &publish.Load{}, true},
		{"kind", &publish.Kind{}, true},
		{"all nearby", publish.Multi{loop, &publish.Load{}}, true},
		{"one far", publish.Multi{loop, far}, false},
		{"none at all", publish.Multi{}, true},
		{"a publisher that does not say", unsaid{}, false},
	} {
		if got := publish.Nearby(tc.p); got != tc.want {
			t.Errorf("%s: Nearby = %v, want %v", tc.name, got, tc.want)
		}
	}
}

type unsaid struct{ publish.Publisher }
