package remoteopt

import (
	"context"
	"net/http"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
)

func TestNew(t *testing.T) {
	ctx := context.Background()
	if n := len(New(ctx, nil, nil)); n != 2 {
		t.Errorf("New(ctx, nil, nil) has %d options, want 2 (context, default keychain)", n)
	}
	if n := len(New(ctx, authn.DefaultKeychain, http.DefaultTransport)); n != 3 {
		t.Errorf("New with a transport has %d options, want 3", n)
	}
}
