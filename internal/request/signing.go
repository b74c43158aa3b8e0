package request

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

	"github.com/google/renameio/v2"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/kilnbuild/kiln/internal/attest"
	"github.com/kilnbuild/kiln/internal/config"
	"github.com/kilnbuild/kiln/internal/keys"
	"github.com/kilnbuild/kiln/internal/pipeline"
	"github.com/kilnbuild/kiln/internal/sign"
	"github.com/kilnbuild/kiln/internal/verify"
)

// ErrNoKey means the request signs but the caller gave no key.
var ErrNoKey = errors.New("--sign needs --key (a cosign private key; kiln keygen makes one)")

// signing is what a run does when it signs (Build.Sign, or .ko.yaml's
// kiln.defaults.sign): before publishing, the key must have loaded; after
// each push, sign and attest SBOM and provenance. The key file is read
// before the compile; decrypting it (scrypt, by design slow) runs beside
// the compile.
//
// An image that already carries a signature and both attestations made
// with this key (a rebuild of unchanged source) is not signed again: its
// public key, remembered in the cache from an earlier decryption of the
// same key file, verifies them, and the key is not decrypted at all. The
// price: with the public key remembered, a build that must sign decrypts
// after its compile rather than beside it.
type signing struct {
	env      Env
	cfg      *config.Config
	jobs     int
	format   sign.Format
	keyPath  string
	debug    bool
	pubCache string // where the key's public half is remembered; "" for nowhere

	decrypting sync.Once
	ready      chan loaded

	opts attest.Options // set by before

	mu      sync.Mutex
	skipped map[string]bool          // digests already signed and attested
	took    map[string]time.Duration // time spent signing, by digest
}

type loaded struct {
	sv  signature.SignerVerifier
	err error
}

// newSigning checks the key and the destination; nil when b does not sign.
func newSigning(env Env, b Build, cfg *config.Config) (*signing, error) {
	if !b.Sign && !cfg.Kiln.Defaults.Sign {
		return nil, nil
	}
	keyPath := env.Key.Path
	if keyPath == "" && env.Key.FromConfig && cfg.Kiln.Defaults.Key != "" {
		keyPath = abs(cfg.Dir, cfg.Kiln.Defaults.Key)
	}
	if keyPath == "" {
		return nil, ErrNoKey
	}
	if env.Signatures == nil {
		return nil, attest.ErrNoDestination
	}
	format, err := sign.ParseFormat(b.SignatureFormat)
	if err != nil {
		return nil, err
	}
	keyPath = abs(env.Dir, keyPath)
	keyFile, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("reading private key: %w", err)
	}
	s := &signing{
		env: env, cfg: cfg, jobs: b.Jobs, debug: b.Debug, format: format, keyPath: keyPath,
		pubCache: publicKeyCache(env.CacheDir, keyFile),
		ready:    make(chan loaded, 1),
		skipped:  map[string]bool{},
		took:     map[string]time.Duration{},
	}
	// With the public key remembered, an unchanged image may need no
	// signature: decrypt only once that is ruled out. Otherwise decrypt
	// beside the compile.
	if _, err := os.Stat(s.pubCache); s.pubCache == "" || err != nil {
		s.decrypt()
	}
	return s, nil
}

// decrypt starts loading the key, once.
func (s *signing) decrypt() {
	s.decrypting.Do(func() {
		go func() {
			// scrypt takes a core for a third of a second here: at the
			// lowest priority it takes what the compile leaves.
			runtime.LockOSThread() // the thread dies with the goroutine
			syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), 19)
			sv, err := keys.LoadSigner(s.keyPath, s.env.Key.Password)
			if err == nil && s.pubCache != "" {
				rememberPublicKey(s.pubCache, sv)
			}
			s.ready <- loaded{sv, err}
		}()
	})
}

// before is the pipeline's BeforePublish: every result is already signed
// by this key, or the key has loaded.
func (s *signing) before(ctx context.Context, results []pipeline.Result) error {
	if alreadySigned(ctx, s.env.Signatures, s.pubCache, s.format, results) {
		for _, r := range results {
			s.skipped[r.Digest] = true
		}
		return nil
	}
	s.decrypt()
	var l loaded
	select {
	case l = <-s.ready:
	case <-ctx.Done():
		return ctx.Err()
	}
	if l.err != nil {
		return l.err
	}
	s.opts = attest.Options{
		Signer: sign.New(l.sv).WithFormat(s.format), Store: s.env.Signatures, KilnVersion: s.env.KilnVersion,
		Dir: s.env.Dir, ConfigPath: s.cfg.Path, Jobs: s.jobs, Created: s.env.Created,
		KoDataTime: s.env.KoData.ModTime, Debug: s.debug,
	}
	return nil
}

// after is the pipeline's AfterPublish: sign and attest res.
func (s *signing) after(ctx context.Context, res pipeline.Result) error {
	if s.skipped[res.Digest] {
		fmt.Fprintf(s.env.Progress, "%s: already signed and attested with this key: not signing again\n", res.ImportPath)
		return nil
	}
	start := time.Now()
	err := attest.Result(ctx, s.opts, res)
	s.mu.Lock()
	s.took[res.Digest] += time.Since(start)
	s.mu.Unlock()
	return err
}

// describe adds to o where its signatures are and what signing cost.
func (s *signing) describe(o *Outcome) {
	o.Attachments = attest.Attachments(o.Result, s.format)
	o.AlreadySigned = s.skipped[o.Digest]
	s.mu.Lock()
	o.Signing = s.took[o.Digest]
	s.mu.Unlock()
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
	renameio.WriteFile(path, pem, 0o644)
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
		hs, err := attest.Manifests(r)
		if err != nil {
			return false
		}
		for _, h := range hs {
			if verify.Complete(ctx, st, r.Repo, h, v, format) != nil {
				return false
			}
		}
	}
	return true
}
