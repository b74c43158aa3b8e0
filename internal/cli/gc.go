package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/kilnbuild/kiln/internal/store"
)

func newGCCommand(inv Invocation) *cobra.Command {
	var dir string
	var grace time.Duration
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Remove blobs nothing refers to, and interrupted uploads, from the local store",
		Long: `Remove from the local store every blob that no tag and no pushed manifest
refers to, and uploads nobody finished. kiln build and gc wait for each other
(a lock in the store), so an image being written is never cut short. While a
server serves the store, gc runs inside it (server --gc-interval) and this
command refuses: only the server knows the pushes it has in flight.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if grace < 0 {
				return fmt.Errorf("--grace %s is negative: give a duration such as 1h", grace)
			}
			if dir == "" {
				d, err := StoreDir(inv.getenv)
				if err != nil {
					return err
				}
				dir = d
			}
			st, err := store.Open(abs(inv.Dir, dir))
			if err != nil {
				return err
			}
			res, err := st.Repositories().GC(cmd.Context(), grace)
			if err != nil {
				return err
			}
			fmt.Fprintf(inv.Stdout, "removed %d blobs (%d bytes), %d interrupted uploads, %d dangling links\n", res.Blobs, res.Bytes, res.Uploads, res.Links)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "store", "", "the store to collect (default: $KILN_STORE, else $XDG_DATA_HOME/kiln/store, else ~/.local/share/kiln/store)")
	cmd.Flags().DurationVar(&grace, "grace", time.Hour, "remove uploads idle for longer than this")
	return cmd
}
