package sign_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/kilnbuild/kiln/internal/sign"
)

// Concurrent referrers of one subject are all kept, in a registry without
// the referrers API (its fallback tag is rewritten by each put) and in a
// layout.
func TestPutReferrerConcurrent(t *testing.T) {
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			rs := tg.st.(sign.ReferrerStore)
			d := pushRandom(t, tg, "v1")
			const n = 8
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					blob := []byte(fmt.Sprintf(`{"n":%d}`, i))
					errs <- rs.PutReferrer(context.Background(), tg.repo, d, sign.BundleMediaType, blob, map[string]string{"n": fmt.Sprint(i)})
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			refs, err := rs.Referrers(context.Background(), tg.repo, d, sign.BundleMediaType)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for _, r := range refs {
				seen[r.Annotations["n"]] = true
			}
			if len(seen) != n {
				t.Errorf("%d of %d referrers kept: %v", len(seen), n, seen)
			}
			other, err := rs.Referrers(context.Background(), tg.repo, d, "application/x-other")
			if err != nil || len(other) != 0 {
				t.Errorf("referrers of another artifact type: %d, %v", len(other), err)
			}
		})
	}
}
