package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kilnbuild/kiln/internal/store"
)

// signalHandler sends each record's message on ch.
type signalHandler struct {
	slog.Handler
	ch chan string
}

func (h signalHandler) Handle(_ context.Context, r slog.Record) error {
	h.ch <- r.Message
	return nil
}

func TestGCInterval(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	// An orphan blob, linked by an earlier server, no manifest holds it.
	earlier, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("orphan"), 100<<10)
	sum := sha256.Sum256(data)
	h := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	up, _ := earlier.Repositories().NewUpload("app")
	up.Write(bytes.NewReader(data))
	if err := up.Commit(h); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Repositories().OpenJournal(); err != nil {
		t.Fatal(err)
	}
	defer st.Repositories().CloseJournal()
	ch := make(chan string, 1)
	log := slog.New(signalHandler{slog.NewTextHandler(io.Discard, nil), ch})
	stop := collectGarbage(context.Background(), st.Repositories(), 1, log)
	if msg := <-ch; msg != "gc" {
		t.Fatalf("log: %q", msg)
	}
	go func() {
		for range ch { // later rounds until stopped
		}
	}()
	stop()
	close(ch)
	if _, err := st.Repositories().StatBlob("app", h); err == nil {
		t.Fatal("the server's gc left an orphan blob")
	}

	for _, args := range [][]string{{"--gc-interval", "-1h"}, {"--gc-interval", "soon"}} {
		if _, err := parseFlags(args, io.Discard); err == nil || !strings.Contains(err.Error(), "gc-interval") {
			t.Errorf("%v: %v", args, err)
		}
	}
}
