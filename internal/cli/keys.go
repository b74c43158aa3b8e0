package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kilnbuild/kiln/internal/keys"
)

func newKeygenCommand(inv Invocation) *cobra.Command {
	return &cobra.Command{
		Use:   "keygen",
		Short: "Write cosign.key and cosign.pub (ECDSA P-256, cosign's formats) into the current directory",
		Long: `Write a key pair in cosign's own formats: cosign.key is an ENCRYPTED SIGSTORE
PRIVATE KEY (scrypt + secretbox) encrypted with $COSIGN_PASSWORD, cosign.pub a
PEM public key. cosign reads both, and kiln reads keys from cosign generate-key-pair.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			priv, pub, err := keys.WriteFiles(inv.Dir, []byte(inv.getenv("COSIGN_PASSWORD")))
			if err != nil {
				return err
			}
			fmt.Fprintf(inv.Stderr, "kiln: private key written to %s\nkiln: public key written to %s\n", priv, pub)
			return nil
		},
	}
}
