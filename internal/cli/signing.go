package cli

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"time"

	"github.com/kilnbuild/kiln/internal/attest"
	"github.com/kilnbuild/kiln/internal/config"
	"github.com/kilnbuild/kiln/internal/keys"
	"github.com/kilnbuild/kiln/internal/pipeline"
	"github.com/kilnbuild/kiln/internal/sign"
)

// signingHook returns what kiln build runs after each push when signing is
// on (--sign, or kiln.defaults.sign): sign, then attest SBOM and provenance.
// Keys and destination are checked here, before anything is built.
func signingHook(inv Invocation, f *buildFlags, cfg *config.Config, st sign.Store, created time.Time) (func(context.Context, pipeline.Result) error, error) {
	on := f.sign || cfg.Kiln.Defaults.Sign
	if !on {
		return nil, nil
	}
	keyPath := f.key
	if keyPath == "" && cfg.Kiln.Defaults.Key != "" {
		keyPath = abs(cfg.Dir, cfg.Kiln.Defaults.Key)
	}
	if keyPath == "" {
		return nil, errors.New("--sign needs --key (a cosign private key; kiln keygen makes one)")
	}
	if st == nil {
		return nil, attest.ErrNoDestination
	}
	format, err := sign.ParseFormat(f.sigFormat)
	if err != nil {
		return nil, err
	}
	sv, err := keys.LoadSigner(abs(inv.Dir, keyPath), []byte(inv.getenv("COSIGN_PASSWORD")))
	if err != nil {
		return nil, err
	}
	opts := attest.Options{
		Signer: sign.New(sv).WithFormat(format), Store: st, KilnVersion: Version, Dir: inv.Dir,
		ConfigPath: cfg.Path, Jobs: f.jobs, Created: created,
	}
	return func(ctx context.Context, res pipeline.Result) error {
		if opts.GOROOT == "" {
			if out, err := exec.CommandContext(ctx, "go", "env", "GOROOT").Output(); err == nil {
				opts.GOROOT = strings.TrimSpace(string(out))
			}
		}
		return attest.Result(ctx, opts, res)
	}, nil
}
