package records_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kilnbuild/kiln/internal/buildrecord"
	"github.com/kilnbuild/kiln/internal/records"
)

// A build's life as the service records it.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "records")
	defer os.RemoveAll(dir)
	db, err := records.Open(ctx, filepath.Join(dir, "records.db"))
	if err != nil {
		panic(err)
	}
	defer db.Close()

	b := &buildrecord.Build{
		Request:  json.RawMessage(`{"module":"example.com/app@v1.2.3","packages":["./cmd/app"]}`),
		Packages: []string{"./cmd/app"},
		Source:   buildrecord.Source{Kind: "module", Ref: "example.com/app@v1.2.3"},
	}
	if err := db.Create(ctx, b); err != nil { // b.ID is set, b.State is queued
		panic(err)
	}
	db.Transition(ctx, b.ID, buildrecord.Running, time.Now(), nil)
	db.AppendLog(ctx, b.ID, "compiling ./cmd/app for linux/amd64\n")
	db.Transition(ctx, b.ID, buildrecord.Succeeded, time.Now(), func(b *buildrecord.Build) {
		b.Results = []buildrecord.Result{{ImportPath: "example.com/app/cmd/app", Digest: "sha256:…"}}
	})
	_, err = db.Transition(ctx, b.ID, buildrecord.Cancelled, time.Now(), nil)
	fmt.Println(err != nil) // a finished build stays finished

	page, _ := db.List(ctx, buildrecord.Filter{Package: "./cmd/app"})
	log, _ := db.Log(ctx, b.ID, 0)
	fmt.Println(len(page.Builds), page.Builds[0].State, log[0].Seq, log[0].Text)
	// Output:
	// true
	// 1 succeeded 1 compiling ./cmd/app for linux/amd64
}
