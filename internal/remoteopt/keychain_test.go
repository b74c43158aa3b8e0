package remoteopt

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// Keychain answers from the docker config; the cloud keychains answer only
// for their own registries, so they never hide or replace its answer.
func TestKeychainReadsTheDockerConfig(t *testing.T) {
	dir := t.TempDir()
	// "ci:pw"
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"auths":{"127.0.0.1:5000":{"auth":"Y2k6cHc="}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dir)
	t.Setenv("GITHUB_TOKEN", "not-for-this-registry")
	for _, tc := range []struct {
		registry string
		want     authn.AuthConfig
	}{
		{"127.0.0.1:5000", authn.AuthConfig{Username: "ci", Password: "pw"}},
		{"127.0.0.1:5001", authn.AuthConfig{}},
		{"localhost:5000", authn.AuthConfig{}},
	} {
		reg, err := name.NewRegistry(tc.registry)
		if err != nil {
			t.Fatal(err)
		}
		auth, err := Keychain.Resolve(reg)
		if err != nil {
			t.Fatalf("%s: %v", tc.registry, err)
		}
		got, err := auth.Authorization()
		if err != nil || got.Username != tc.want.Username || got.Password != tc.want.Password {
			t.Errorf("%s: %+v, %v; want %+v", tc.registry, got, err, tc.want)
		}
	}
}
