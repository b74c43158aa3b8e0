package service

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/kilnbuild/kiln/internal/buildrecord"
)

// buildLog is GET /builds/{id}/log: the stored lines as text, or with
// Accept: text/event-stream the stored lines after Last-Event-ID and then
// the live ones, each event's id its line's number, ending with an "end"
// event whose data is {"id": …, "state": …}.
func (s *Service) buildLog(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if !wantsEvents(r) {
		b, err := s.get(r.Context(), id)
		if err != nil {
			return err
		}
		lines, err := s.cfg.Records.Log(r.Context(), b.ID, 0)
		if err != nil {
			return fmt.Errorf("reading the log of build %s: %w", b.ID, err)
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		for _, l := range lines {
			io.WriteString(w, l.Text+"\n")
		}
		return nil
	}

	after, err := lastEventID(r)
	if err != nil {
		return err
	}
	// Subscribe before reading the record: a build that is not final
	// when read then ends through this reader.
	rd := s.hub.subscribe(id)
	defer s.hub.unsubscribe(id, rd)
	b, err := s.get(r.Context(), id)
	if err != nil {
		return err
	}
	lines, err := s.cfg.Records.Log(r.Context(), b.ID, after)
	if err != nil {
		return fmt.Errorf("reading the log of build %s: %w", b.ID, err)
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	for _, l := range lines {
		writeLine(w, l)
		after = l.Seq
	}
	if b.State.Final() {
		writeEnd(w, b.ID, b.State)
		return nil
	}
	rc.Flush()
	for {
		select {
		case ev, ok := <-rd.ch:
			if !ok {
				return nil // fell behind or shutting down: the client resumes
			}
			if ev.State != "" {
				writeEnd(w, b.ID, ev.State)
				return nil
			}
			if ev.Line.Seq <= after {
				continue
			}
			writeLine(w, ev.Line)
			after = ev.Line.Seq
			if len(rd.ch) == 0 {
				rc.Flush()
			}
		case <-r.Context().Done():
			return nil
		}
	}
}

func wantsEvents(r *http.Request) bool {
	for _, a := range strings.Split(r.Header.Get("Accept"), ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(a)); err == nil && mt == "text/event-stream" {
			return true
		}
	}
	return false
}

func lastEventID(r *http.Request) (int64, error) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, errorf(http.StatusBadRequest, "Last-Event-ID %q is not a line number this server sent", v)
	}
	return n, nil
}

func writeLine(w io.Writer, l buildrecord.LogLine) {
	fmt.Fprintf(w, "id: %d\ndata: %s\n\n", l.Seq, l.Text)
}

func writeEnd(w http.ResponseWriter, id string, state buildrecord.State) {
	data, _ := json.Marshal(map[string]string{"id": id, "state": string(state)})
	fmt.Fprintf(w, "event: end\ndata: %s\n\n", data)
	http.NewResponseController(w).Flush()
}
