package service

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/internal/buildrecord"
)

func TestLogWriterLines(t *testing.T) {
	rec := newFakeRecords()
	s := &Service{cfg: Config{Records: rec}, hub: newHub()}
	rd := s.hub.subscribe("b1")
	lw := s.newLogWriter(context.Background(), "b1", slog.New(slog.DiscardHandler))
	lw.hidePath("/tmp/kiln-build-1")
	for _, w := range []string{"a\r\n\n  \nb", "c\n", strings.Repeat("x", maxLine+1), "\n/tmp/kiln-build-1/src/main.go:1: bad\nlast"} {
		lw.Write([]byte(w))
	}
	lw.flush()
	lines, _ := rec.Log(context.Background(), "b1", 0)
	var got []string
	for i, l := range lines {
		if l.Seq != int64(i+1) {
			t.Errorf("line %d has seq %d", i, l.Seq)
		}
		got = append(got, l.Text)
	}
	want := []string{"a", "bc", strings.Repeat("x", maxLine), "x", "./src/main.go:1: bad", "last"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("stored lines %q,\nwant %q", got, want)
	}
	for i := range want {
		ev := <-rd.ch
		if ev.Line.Seq != int64(i+1) || ev.Line.Text != want[i] {
			t.Errorf("live event %d: %+v, want %q", i, ev.Line, want[i])
		}
	}
}

// A reader that falls behind is let go (its channel closes) instead of
// holding up the build; it resumes from the records.
func TestHubDropsASlowReader(t *testing.T) {
	h := newHub()
	slow := h.subscribe("b1")
	for i := range readerBuffer + 1 {
		h.publish("b1", buildrecord.LogLine{Seq: int64(i + 1), Text: "x"})
	}
	n := 0
	for range slow.ch {
		n++
	}
	if n != readerBuffer {
		t.Errorf("the slow reader got %d events before its end, want %d", n, readerBuffer)
	}
	h.unsubscribe("b1", slow) // after the hub let it go: no double close
	if len(h.streams) != 0 {
		t.Errorf("streams left: %v", h.streams)
	}
}
