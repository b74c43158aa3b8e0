package remoteopt

import (
	"context"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// New returns the options for one registry call: ctx, credentials from kc
// (nil: Keychain, the docker config and the cloud keychains) and tr (nil: ggcr's
// default transport, plain http for loopback hosts).
func New(ctx context.Context, kc authn.Keychain, tr http.RoundTripper) []remote.Option {
	if kc == nil {
		kc = Keychain
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc)}
	if tr != nil {
		opts = append(opts, remote.WithTransport(tr))
	}
	return opts
}
