package service

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/kilnbuild/kiln/internal/buildrecord"
	"github.com/kilnbuild/kiln/internal/records"
)

// A build that logs past the records' cap: the live stream shows what
// the records keep (the same ids and text, the "log truncated" line
// last), so a reader that resumes with Last-Event-ID, or reads the log
// after the build, sees one numbering.
func TestLogPastCapLiveMatchesStored(t *testing.T) {
	db, err := records.Open(context.Background(), filepath.Join(t.TempDir(), "records.db"), records.WithMaxLogBytes(300))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	release := make(chan struct{})
	e := newEnv(t, func(e *env, cfg *Config) {
		cfg.Records = db
		e.run.run = func(ctx context.Context, log io.Writer) ([]buildrecord.Result, error) {
			<-release
			for i := range 40 {
				fmt.Fprintf(log, "compiling package number %02d\n", i)
			}
			return []buildrecord.Result{{ImportPath: "example.com/app/cmd/app"}}, nil
		}
	})
	b := e.mustSubmit(okRequest)
	live := e.stream(b.ID, "") // subscribed: every line from here is live
	close(release)
	got := live.until(`"state"`)
	lines := got[:len(got)-1]
	if len(lines) < 3 || lines[len(lines)-1].data != "log truncated at 300 bytes" {
		t.Fatalf("live lines %v: want the cap's line last", lines)
	}

	stored, err := db.Log(context.Background(), b.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != len(lines) {
		t.Fatalf("live: %d lines, stored: %d", len(lines), len(stored))
	}
	for i, l := range stored {
		if lines[i].id != strconv.FormatInt(l.Seq, 10) || lines[i].data != l.Text {
			t.Errorf("line %d: live id %s %q, stored %d %q", i, lines[i].id, lines[i].data, l.Seq, l.Text)
		}
	}
	// Resuming in the middle gives the rest, numbered alike.
	mid := len(lines) / 2
	rest := e.stream(b.ID, lines[mid-1].id).until(`"state"`)
	rest = rest[:len(rest)-1]
	if fmt.Sprint(rest) != fmt.Sprint(lines[mid:]) {
		t.Errorf("resumed at %s: %v,\nwant %v", lines[mid-1].id, rest, lines[mid:])
	}
}
