package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/kilnbuild/kiln/internal/attest"
	"github.com/kilnbuild/kiln/internal/config"
	"github.com/kilnbuild/kiln/internal/keys"
	"github.com/kilnbuild/kiln/internal/pipeline"
	"github.com/kilnbuild/kiln/internal/sign"
	"github.com/kilnbuild/kiln/internal/verify"
)

// signingHook returns what kiln build runs when signing is on (--sign, or
// kiln.defaults.sign): before publishing, the key must have loaded; after
// each push, sign and attest SBOM and provenance. The key file is checked
// now; decrypting it (scrypt, by design slow) runs beside the compile.
//
// An image that already carries a signature and both attestations made
// with this key (a rebuild of unchanged source) is not signed again: its
// public key, remembered in the cache from an earlier decryption of the
// same key file, verifies them, and the key is not decrypted at all. The
// price: with the public key remembered, a build that must sign decrypts
// after its compile rather than beside it.
func signingHook(inv Invocation, f *buildFlags, cfg *config.Config, st sign.Store, created time.Time, cacheDir string) (before func(context.Context, []pipeline.Result) error, after func(context.Context, pipeline.Result) error, err error) {
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
	keyFile, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, fmt.Errorf("reading private key: %w", err)
	}
	pubCache := publicKeyCache(cacheDir, keyFile)
	type loaded struct {
		sv  signature.SignerVerifier
		err error
	}
	ready := make(chan loaded, 1)
	var decrypting sync.Once
	decrypt := func() {
		decrypting.Do(func() {
			go func() {
				// scrypt takes a core for a third of a second here: at the
				// lowest priority it takes what the compile leaves.
				runtime.LockOSThread() // the thread dies with the goroutine
				syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), 19)
				sv, err := keys.LoadSigner(keyPath, []byte(inv.getenv("COSIGN_PASSWORD")))
				if err == nil && pubCache != "" {
					rememberPublicKey(pubCache, sv)
				}
				ready <- loaded{sv, err}
			}()
		})
	}
	// With the public key remembered, an unchanged image may need no
	// signature: decrypt only once that is ruled out. Otherwise decrypt
	// beside the compile.
	if _, err := os.Stat(pubCache); pubCache == "" || err != nil {
		decrypt()
	}
	var opts attest.Options
	done := map[string]bool{} // results already signed and attested
	before = func(ctx context.Context, results []pipeline.Result) error {
		if alreadySigned(ctx, st, pubCache, format, results) {
			for _, r := range results {
				done[r.Digest] = true
			}
			return nil
		}
		decrypt()
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
	after = func(ctx context.Context, res pipeline.Result) error {
		if done[res.Digest] {
			fmt.Fprintf(inv.Stderr, "%s: already signed and attested with this key: not signing again\n", res.ImportPath)
			return nil
		}
		return attest.Result(ctx, opts, res)
	}
	return before, after, nil
}

// publicKeyCache is where the public key of keyFile is remembered: named
// by the hash of the encrypted file, so another key or password change
// (which re-encrypts) misses. "" when there is no cache.
func publicKeyCache(cacheDir string, keyFile []byte) string {
	if cacheDir == "" {
		return ""
	}
	sum := sha256.Sum256(keyFile)
	return filepath.Join(cacheDir, "keys", hex.EncodeToString(sum[:])+".pub")
}

// rememberPublicKey writes the public half of sv to path, atomically; a
// failure only costs the next build its shortcut.
func rememberPublicKey(path string, sv signature.SignerVerifier) {
	pem, err := keys.PublicKeyPEM(sv)
	if err != nil || os.MkdirAll(filepath.Dir(path), 0o755) != nil {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*.pub")
	if err != nil {
		return
	}
	_, werr := tmp.Write(pem)
	if cerr := tmp.Close(); werr != nil || cerr != nil || os.Rename(tmp.Name(), path) != nil {
		os.Remove(tmp.Name())
	}
}

// alreadySigned reports whether every manifest of every result (each
// index and its platforms) carries a signature, an SBOM and a provenance
// that verify with the remembered public key.
func alreadySigned(ctx context.Context, st sign.Store, pubCache string, format sign.Format, results []pipeline.Result) bool {
	if pubCache == "" {
		return false
	}
	v, err := keys.LoadVerifier(pubCache) // fails when nothing is remembered

	if err != nil {
		return false
	}
	for _, r := range results {
		digests := []string{r.Digest}
		if len(r.Images) > 1 {
			for _, img := range r.Images {
				digests = append(digests, img.Digest)
			}
		}
		for _, d := range digests {
			h, err := v1.NewHash(d)
			if err != nil || verify.Complete(ctx, st, r.Repo, h, v, format) != nil {
				return false
			}
		}
	}
	return true
}
