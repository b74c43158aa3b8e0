package service

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/internal/buildrecord"
)

type sse struct {
	id, event, data string
}

// events reads a log stream's events as they come.
type events struct {
	t    *testing.T
	resp *http.Response
	r    *bufio.Reader
}

func (e *env) stream(id string, lastEventID string) *events {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/builds/"+id+"/log", nil)
	req.Header.Set("Accept", "text/event-stream")
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		e.t.Fatalf("log stream: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	e.t.Cleanup(func() { resp.Body.Close() })
	return &events{t: e.t, resp: resp, r: bufio.NewReader(resp.Body)}
}

// next reads one event; ok is false at the end of the stream.
func (s *events) next() (ev sse, ok bool) {
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return ev, false
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			return ev, true
		}
		k, v, _ := strings.Cut(line, ": ")
		switch k {
		case "id":
			ev.id = v
		case "event":
			ev.event = v
		case "data":
			ev.data = v
		}
	}
}

// until reads events up to and including the one whose data contains s.
func (s *events) until(sub string) []sse {
	s.t.Helper()
	var got []sse
	for {
		ev, ok := s.next()
		if !ok {
			s.t.Fatalf("stream ended before %q; got %v", sub, got)
		}
		got = append(got, ev)
		if strings.Contains(ev.data, sub) {
			return got
		}
	}
}

// pausedRunner writes "one" and "two", says so on paused, waits for
// resume, writes "three" and succeeds.
func pausedRunner(e *env) (paused, resume chan struct{}) {
	paused, resume = make(chan struct{}), make(chan struct{})
	e.run.run = func(ctx context.Context, log io.Writer) ([]buildrecord.Result, error) {
		fmt.Fprintln(log, "one")
		fmt.Fprint(log, "tw")
		fmt.Fprintln(log, "o")
		close(paused)
		<-resume
		fmt.Fprint(log, "three") // no newline: flushed at the end
		return nil, nil
	}
	return paused, resume
}

func TestLogStreamLiveAndResume(t *testing.T) {
	e := newEnv(t, nil)
	paused, resume := pausedRunner(e)
	b := e.mustSubmit(okRequest)
	<-paused
	live := e.stream(b.ID, "")
	first := live.until("two")
	// A second reader resumes after "one".
	var oneID string
	for _, ev := range first {
		if ev.data == "one" {
			oneID = ev.id
		}
	}
	resumed := e.stream(b.ID, oneID)
	close(resume)
	rest := live.until(`"state":"succeeded"`)
	all := append(first, rest...)
	var texts []string
	for i, ev := range all[:len(all)-1] {
		if want := strconv.Itoa(i + 1); ev.id != want {
			t.Errorf("event %d has id %q, want %s", i, ev.id, want)
		}
		texts = append(texts, ev.data)
	}
	want := []string{"fetching module source example.com/app@v1.0.0", "compiling in ./src", "one", "two", "three", "build succeeded"}
	if strings.Join(texts, "|") != strings.Join(want, "|") {
		t.Errorf("lines %q, want %q", texts, want)
	}
	if end := all[len(all)-1]; end.event != "end" || end.data != fmt.Sprintf(`{"id":%q,"state":"succeeded"}`, b.ID) {
		t.Errorf("last event %+v, want the end with the final state", end)
	}
	if _, ok := live.next(); ok {
		t.Error("the stream goes on after the end event")
	}

	got := resumed.until(`"state":"succeeded"`)
	if got[0].data != "two" || len(got) != 4 {
		t.Errorf("resumed after %s: %v, want two, three, build succeeded, end", oneID, got)
	}

	// After the end, a resumed stream gives the stored rest and the end.
	after := e.stream(b.ID, "4")
	got = after.until(`"state":"succeeded"`)
	if len(got) != 3 || got[0].data != "three" || got[0].id != "5" {
		t.Errorf("resumed after the end: %v", got)
	}
}

// A reader of a queued build waits for it to run.
func TestLogStreamOfAQueuedBuild(t *testing.T) {
	e := newEnv(t, nil)
	release, started := blocked(e)
	first := e.mustSubmit(okRequest)
	<-started
	second := e.mustSubmit(okRequest)
	s := e.stream(second.ID, "")
	close(release)
	got := s.until(`"state":"succeeded"`)
	if got[0].data != "fetching module source example.com/app@v1.0.0" {
		t.Errorf("first event %+v", got[0])
	}
	e.rec.wait(first.ID, buildrecord.Succeeded)
}

// A reader of a build cancelled while queued gets the end.
func TestLogStreamOfACancelledQueuedBuild(t *testing.T) {
	e := newEnv(t, nil)
	release, started := blocked(e)
	defer close(release)
	e.mustSubmit(okRequest)
	<-started
	second := e.mustSubmit(okRequest)
	s := e.stream(second.ID, "")
	e.do("POST", "/api/v1/builds/"+second.ID+"/cancel", "", nil)
	got := s.until(`"state":"cancelled"`)
	if len(got) != 1 || got[0].event != "end" {
		t.Errorf("events %v, want the end alone", got)
	}
}

func TestLogText(t *testing.T) {
	e := newEnv(t, nil)
	b := e.mustSubmit(okRequest)
	e.rec.wait(b.ID, buildrecord.Succeeded)
	resp, body := e.do("GET", "/api/v1/builds/"+b.ID+"/log", "", nil)
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	want := "fetching module source example.com/app@v1.0.0\ncompiling in ./src\nbuild succeeded\n"
	if string(body) != want {
		t.Errorf("log %q, want %q", body, want)
	}
}
