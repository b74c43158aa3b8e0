package remoteopt

import (
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/authn/github"
	"github.com/google/go-containerregistry/pkg/v1/google"
)

// Keychain is where kiln finds registry credentials when the caller gives
// none: the docker config (its auths and credential helpers, as `kiln
// login` writes it), then Google's (Artifact Registry and Container
// Registry: gcloud or the metadata server) and GitHub's container registry
// (GITHUB_TOKEN), in ko's order. Each cloud keychain answers only for its
// own registries' hosts; any other host gets the docker config's answer.
//
// ko also carries ECR's and ACR's keychains; kiln leaves them out for their
// weight (README, "Registry credentials"): their credential helpers,
// named under credHelpers in the docker config, do the same.
var Keychain authn.Keychain = authn.NewMultiKeychain(authn.DefaultKeychain, google.Keychain, github.Keychain)
