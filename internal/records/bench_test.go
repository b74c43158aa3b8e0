package records

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/buildrecord"
)

// BenchmarkList is GET /builds's query over 10,000 builds (of which two
// are running), with realistic documents: the first page of 50 (also
// while the two running builds write their logs), a filtered page, and
// a page deep in the list. p99-ns/op is the 99th percentile of one List.
//
//	go test -run '^$' -bench List -benchtime 2000x ./internal/records
func BenchmarkList(b *testing.B) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(b.TempDir(), "records.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	const n = 10000
	var mid string
	var running []string
	for i := range n {
		bd := newBuild([]string{"git", "module", "upload", "workspace"}[i%4], fmt.Sprintf("./cmd/svc%d", i%20), "./cmd/tool")
		bd.Request = json.RawMessage(`{"packages":["./cmd/svc","./cmd/tool"],"platforms":["linux/amd64","linux/arm64"],"tags":["latest"],"sign":true}`)
		if err := db.Create(ctx, bd); err != nil {
			b.Fatal(err)
		}
		if i == n/2 {
			mid = bd.ID
		}
		if i >= n-2 {
			if _, err := db.Transition(ctx, bd.ID, buildrecord.Running, time.Now(), nil); err != nil {
				b.Fatal(err)
			}
			running = append(running, bd.ID)
			continue
		}
		_, err := db.Transition(ctx, bd.ID, buildrecord.Cancelled, time.Now(), func(u *buildrecord.Build) {
			u.Results = []buildrecord.Result{{ImportPath: "example.com/svc", Ref: "127.0.0.1:5000/svc@sha256:" + fmt.Sprintf("%064d", i),
				Digest: "sha256:" + fmt.Sprintf("%064d", i), Images: []buildrecord.Image{{Platform: "linux/amd64", Digest: "sha256:a", Bytes: 1 << 20}, {Platform: "linux/arm64", Digest: "sha256:b", Bytes: 1 << 20}}}}
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	for _, bc := range []struct {
		name    string
		f       buildrecord.Filter
		writers int // goroutines appending log lines meanwhile, as running builds do
	}{
		{"first-page", buildrecord.Filter{}, 0},
		{"first-page-2-writing", buildrecord.Filter{}, 2},
		{"package", buildrecord.Filter{Package: "./cmd/svc7"}, 0},
		{"state-running", buildrecord.Filter{State: buildrecord.Running}, 0},
		{"deep-cursor", buildrecord.Filter{Cursor: mid}, 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for _, id := range running[:bc.writers] {
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						if _, err := db.AppendLog(ctx, id, "compiling example.com/svc/internal/thing\n"); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			var took []time.Duration
			for b.Loop() {
				start := time.Now()
				p, err := db.List(ctx, bc.f)
				took = append(took, time.Since(start))
				if err != nil || len(p.Builds) == 0 {
					b.Fatal(len(p.Builds), err)
				}
			}
			close(stop)
			wg.Wait()
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)*99/100].Nanoseconds()), "p99-ns/op")
		})
	}
}

// BenchmarkCreate is one submitted build's write.
func BenchmarkCreate(b *testing.B) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(b.TempDir(), "records.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	for b.Loop() {
		if err := db.Create(ctx, newBuild("git", "./cmd/app", "./cmd/tool")); err != nil {
			b.Fatal(err)
		}
	}
}
