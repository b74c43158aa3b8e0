package source

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"
)

// FuzzSaveUpload feeds SaveUpload arbitrary bytes. An archive it refuses
// must be refused as ErrInvalid and leave nothing in the upload
// directory; one it keeps must unpack with Fetch into a tree that passes
// checkTree (no link leaves it, nothing special in it).
func FuzzSaveUpload(f *testing.F) {
	f.Add(goodArchive(f))
	for _, data := range badArchives(f) {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		fe := &Fetcher{UploadDir: t.TempDir(), Limits: testLimits}
		id, _, err := fe.SaveUpload(ctx, bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("refused without ErrInvalid: %v", err)
			}
			if left, _ := os.ReadDir(fe.UploadDir); len(left) != 0 {
				t.Fatalf("a refused archive left %v", left)
			}
			return
		}
		r, err := fe.Resolve(ctx, Spec{Upload: id})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fe.Fetch(ctx, r, t.TempDir()); err != nil {
			t.Fatalf("a kept archive does not unpack: %v", err)
		}
	})
}
