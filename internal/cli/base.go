package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"

	"github.com/kilnbuild/kiln/internal/base"
	"github.com/kilnbuild/kiln/internal/gobuild"
	"github.com/kilnbuild/kiln/internal/publish"
)

func newBaseCommand(inv Invocation) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "base",
		Short: "Work with kiln's built-in base images",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "push static DEST",
		Short: "Publish the built-in static base to a registry (REGISTRY/REPO:TAG) or an OCI layout (oci:DIR)",
		Long: `Publish kiln's built-in base so that other tools (ko, a Dockerfile) can use it:
static is a distroless-style root filesystem (CA bundle, time zones, nonroot
user 65532) for every linux architecture, generated with no network.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if args[0] != "static" {
				return fmt.Errorf("unknown built-in base %q: only static can be pushed (scratch is no image at all)", args[0])
			}
			goroot, err := (&gobuild.Builder{Env: inv.Env}).GOROOT(ctx, inv.Dir)
			if err != nil {
				return err
			}
			tmp, err := os.MkdirTemp("", "kiln-base-*")
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			b, err := base.Resolve(ctx, args[0], base.Options{GOROOT: goroot, Dir: tmp})
			if err != nil {
				return err
			}
			idx, ok := b.Index()
			if !ok {
				return fmt.Errorf("base %s is not an index", args[0])
			}
			var pub publish.Publisher
			repo, tag := "", "latest"
			if dir, ok := strings.CutPrefix(args[1], "oci:"); ok {
				repo, pub = "kiln.local/static", &publish.ToLayout{Dir: abs(inv.Dir, dir)}
			} else {
				ref, err := name.NewTag(args[1])
				if err != nil {
					return fmt.Errorf("destination %q is neither REGISTRY/REPO[:TAG] nor oci:DIR: %v", args[1], err)
				}
				repo, tag = ref.Context().String(), ref.TagStr()
				pub = &publish.ToRegistry{Repo: repo}
			}
			if err := pub.Check(ctx); err != nil {
				return err
			}
			d, err := pub.Publish(ctx, idx, repo, []string{tag})
			if err != nil {
				return err
			}
			if err := pub.Close(ctx); err != nil {
				return err
			}
			fmt.Fprintln(inv.Stdout, d.String())
			return nil
		},
	})
	return cmd
}
