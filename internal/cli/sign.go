package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kilnbuild/kiln/internal/checked"
	"github.com/kilnbuild/kiln/internal/keys"
	"github.com/kilnbuild/kiln/internal/sign"
)

func newSignCommand(inv Invocation) *cobra.Command {
	var keyPath, storeDir, format string
	cmd := &cobra.Command{
		Use:   "sign --key cosign.key IMAGE",
		Short: "Sign an image (and each platform of an index) in cosign's format",
		Long: `Sign IMAGE by digest with a cosign private key (password from $COSIGN_PASSWORD).
IMAGE is a registry reference, oci:DIR:REPO:TAG, or a kiln.local/... image in the
local store. For an index, the index and every platform manifest are signed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if keyPath == "" {
				return errors.New("--key is required: a cosign private key (kiln keygen makes one)")
			}
			f, err := sign.ParseFormat(format)
			if err != nil {
				return err
			}
			sv, err := keys.LoadSigner(abs(inv.Dir, keyPath), []byte(inv.getenv("COSIGN_PASSWORD")))
			if err != nil {
				return err
			}
			t, err := resolveImage(ctx, inv, args[0], storeDir)
			if err != nil {
				return err
			}
			// Sign only what was checked: every manifest and config
			// under the digest (layers are the verifier's to read).
			if _, err := checked.Walk(ctx, t.artifact, checked.WalkOptions{SkipLayers: true}); err != nil {
				return err
			}
			signer := sign.New(sv).WithFormat(f)
			platforms, err := t.platformDigests()
			if err != nil {
				return err
			}
			for _, d := range append(platforms, t.digest) {
				if err := signer.Sign(ctx, t.store, t.repo, d); err != nil {
					return err
				}
				fmt.Fprintf(inv.Stdout, "signed %s@%s\n", t.repo, d)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&keyPath, "key", "", "cosign private key file")
	cmd.Flags().StringVar(&format, "signature-format", "tags", "tags (sha256-<hex>.sig) or referrers (a Sigstore bundle as an OCI 1.1 referrer)")
	cmd.Flags().StringVar(&storeDir, "store", "", "local store directory (default as for kiln build)")
	return cmd
}
