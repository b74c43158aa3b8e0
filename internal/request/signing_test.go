package request

import (
	"context"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kilnbuild/kiln/internal/keys"
	"github.com/kilnbuild/kiln/internal/sign"
	"github.com/kilnbuild/kiln/internal/verify"
)

// TestRunSigns signs into an OCI layout: every manifest verifies, the
// outcome says where, and a second run with the key's public half
// remembered signs nothing again.
func TestRunSigns(t *testing.T) {
	needsCompile(t)
	env, _ := layoutEnv(t)
	keyDir := t.TempDir()
	priv, pub, err := keys.WriteFiles(keyDir, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	env.Key = Key{Path: priv, Password: []byte("pw")}
	env.CacheDir = t.TempDir()
	b := Build{Packages: []string{"./cmd/hello"}, Platforms: []string{"linux/amd64", "linux/arm64"}, Base: "scratch", Sign: true}
	out, err := Run(context.Background(), env, b)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	o := out[0]
	if o.AlreadySigned || o.Signing <= 0 {
		t.Errorf("first run: AlreadySigned %v, Signing %v; want signed now", o.AlreadySigned, o.Signing)
	}
	if len(o.Attachments) != 3 { // the index and two platforms
		t.Fatalf("attachments = %+v, want 3", o.Attachments)
	}
	v, err := keys.LoadVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range o.Attachments {
		_, d, _ := strings.Cut(a.Manifest, "@")
		h, err := v1.NewHash(d)
		if err != nil {
			t.Fatal(err)
		}
		if err := verify.Complete(context.Background(), env.Signatures, o.Repo, h, v, sign.FormatTags); err != nil {
			t.Errorf("%s: %v", a.Manifest, err)
		}
		if want := o.Repo + ":" + sign.SignatureTag(h); a.Signature != want {
			t.Errorf("signature at %s, want %s", a.Signature, want)
		}
	}

	var log strings.Builder
	env.Progress = &log
	again, err := Run(context.Background(), env, b)
	if err != nil {
		t.Fatalf("second Run: %v", err)
	}
	if a := again[0]; a.Digest != o.Digest || !a.AlreadySigned || a.Signing != 0 || len(a.Attachments) != 3 {
		t.Errorf("second run: digest %s (first %s), AlreadySigned %v, Signing %v, %d attachments",
			a.Digest, o.Digest, a.AlreadySigned, a.Signing, len(a.Attachments))
	}
	if !strings.Contains(log.String(), "not signing again") {
		t.Errorf("the log does not say the image was not signed again:\n%s", log.String())
	}
}
