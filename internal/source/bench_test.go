package source

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
)

// benchArchive is a source-like tree: 2000 Go files of 4 KiB in 100
// directories (8 MiB unpacked).
func benchArchive(b *testing.B) []byte {
	entries := make([]ent, 0, 2000)
	for i := range 2000 {
		var body strings.Builder
		for j := 0; body.Len() < 4096; j++ {
			fmt.Fprintf(&body, "func f%d_%d() int { return %d }\n", i, j, (i*7919+j*104729)%1000003)
		}
		entries = append(entries, ent{name: fmt.Sprintf("pkg%d/f%d.go", i%100, i), body: body.String()})
	}
	return tgz(b, entries...)
}

// BenchmarkSaveUpload measures checking and storing an archive.
func BenchmarkSaveUpload(b *testing.B) {
	data := benchArchive(b)
	f := &Fetcher{UploadDir: b.TempDir()}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, _, err := f.SaveUpload(context.Background(), bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFetchUpload measures unpacking a stored archive into a build
// directory.
func BenchmarkFetchUpload(b *testing.B) {
	data := benchArchive(b)
	f := &Fetcher{UploadDir: b.TempDir()}
	id, _, err := f.SaveUpload(context.Background(), bytes.NewReader(data))
	if err != nil {
		b.Fatal(err)
	}
	r, err := f.Resolve(context.Background(), Spec{Upload: id})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := f.Fetch(context.Background(), r, b.TempDir()); err != nil {
			b.Fatal(err)
		}
	}
}
