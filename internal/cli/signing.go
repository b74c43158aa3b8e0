package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/kilnbuild/kiln/internal/attest"
	"github.com/kilnbuild/kiln/internal/config"
	"github.com/kilnbuild/kiln/internal/keys"
	"github.com/kilnbuild/kiln/internal/pipeline"
	"github.com/kilnbuild/kiln/internal/sign"
)

// signingHook returns what kiln build runs when signing is on (--sign, or
// kiln.defaults.sign): before publishing, the key must have loaded; after
// each push, sign and attest SBOM and provenance. The key file is checked
// now; decrypting it (scrypt, by design slow) runs beside the compile.
func signingHook(inv Invocation, f *buildFlags, cfg *config.Config, st sign.Store, created time.Time) (before func(context.Context) error, after func(context.Context, pipeline.Result) error, err error) {
	on := f.sign || cfg.Kiln.Defaults.Sign
	if !on {
		return nil, nil, nil
	}
	keyPath := f.key
	if keyPath == "" && cfg.Kiln.Defaults.Key != "" {
		keyPath = abs(cfg.Dir, cfg.Kiln.Defaults.Key)
	}
	if keyPath == "" {
		return nil, nil, errors.New("--sign needs --key (a cosign private key; kiln keygen makes one)")
	}
	if st == nil {
		return nil, nil, attest.ErrNoDestination
	}
	format, err := sign.ParseFormat(f.sigFormat)
	if err != nil {
		return nil, nil, err
	}
	keyPath = abs(inv.Dir, keyPath)
	if _, err := os.Stat(keyPath); err != nil {
		return nil, nil, fmt.Errorf("reading private key: %w", err)
	}
	type loaded struct {
		sv  signature.SignerVerifier
		err error
	}
	ready := make(chan loaded, 1)
	go func() {
		sv, err := keys.LoadSigner(keyPath, []byte(inv.getenv("COSIGN_PASSWORD")))
		ready <- loaded{sv, err}
	}()
	var opts attest.Options
	before = func(ctx context.Context) error {
		var l loaded
		select {
		case l = <-ready:
		case <-ctx.Done():
			return ctx.Err()
		}
		if l.err != nil {
			return l.err
		}
		opts = attest.Options{
			Signer: sign.New(l.sv).WithFormat(format), Store: st, KilnVersion: Version,
			Dir: inv.Dir, ConfigPath: cfg.Path, Jobs: f.jobs, Created: created,
		}
		return nil
	}
	after = func(ctx context.Context, res pipeline.Result) error { return attest.Result(ctx, opts, res) }
	return before, after, nil
}
