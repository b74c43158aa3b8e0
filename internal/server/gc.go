package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/kilnbuild/kiln/internal/store"
)

// gcGrace is how long a push may take from its first answer to its
// manifest, and how long an idle upload is kept: the registry's upload TTL.
const gcGrace = time.Hour

// collectGarbage runs the store's gc every interval until ctx is done or
// the returned stop is called, which waits for a collection in progress.
// gc runs inside the server because only the server knows the pushes it
// has in flight (see store.ErrStoreServed).
func collectGarbage(ctx context.Context, st *store.Repositories, interval time.Duration, log *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			res, err := st.GC(ctx, gcGrace)
			if err != nil {
				if ctx.Err() == nil {
					log.Error("gc", "err", err)
				}
				continue
			}
			log.Info("gc", "blobs", res.Blobs, "bytes", res.Bytes, "uploads", res.Uploads, "links", res.Links)
		}
	}()
	return func() { cancel(); <-done }
}
