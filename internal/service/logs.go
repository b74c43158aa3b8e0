package service

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"

	"github.com/kilnbuild/kiln/internal/buildrecord"
)

// maxLine bounds a log line: a longer one is cut into pieces.
const maxLine = 64 << 10

// logWriter is a build's log: the Runner's bytes, cut into lines, stored
// through Records.AppendLog and then handed to live readers as stored.
// Lines are numbered from 1 by Records. Empty lines are left out.
type logWriter struct {
	ctx context.Context
	id  string
	s   *Service
	log *slog.Logger

	mu      sync.Mutex
	partial []byte
	hide    string // a server path replaced by "." in every line
	failed  bool   // AppendLog failed once: logged, not again
}

func (s *Service) newLogWriter(ctx context.Context, id string, log *slog.Logger) *logWriter {
	return &logWriter{ctx: context.WithoutCancel(ctx), id: id, s: s, log: log}
}

// hidePath replaces dir in every later line, so that a log does not show
// where the server keeps builds.
func (l *logWriter) hidePath(dir string) {
	l.mu.Lock()
	l.hide = dir
	l.mu.Unlock()
}

func (l *logWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	var lines []string
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		lines = append(lines, string(l.partial[:i]))
		l.partial = l.partial[i+1:]
	}
	for len(l.partial) > maxLine {
		lines = append(lines, string(l.partial[:maxLine]))
		l.partial = l.partial[maxLine:]
	}
	l.partial = bytes.Clone(l.partial)
	l.store(lines)
	return len(p), nil
}

// line writes one of the service's own lines (e.g. "build succeeded").
func (l *logWriter) line(s string) { l.Write([]byte(s + "\n")) }

// flush stores a last line without a newline.
func (l *logWriter) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.partial) > 0 {
		l.store([]string{string(l.partial)})
		l.partial = nil
	}
}

// store appends lines, then hands what Records stored to readers: a
// reader that subscribed before a line was stored gets it live, with the
// number and text a reader of the records gets (past the log's cap, the
// records' last line and nothing after it).
func (l *logWriter) store(lines []string) {
	kept := lines[:0]
	for _, line := range lines {
		line = strings.TrimRight(line, "\r")
		if l.hide != "" {
			line = strings.ReplaceAll(line, l.hide, ".")
		}
		if strings.TrimSpace(line) != "" {
			kept = append(kept, line)
		}
	}
	if len(kept) == 0 {
		return
	}
	stored, err := l.s.cfg.Records.AppendLog(l.ctx, l.id, strings.Join(kept, "\n"))
	if err != nil && !l.failed {
		l.failed = true
		l.log.Error("storing build log lines failed; later lines may be missing", "error", err)
	}
	for _, line := range stored {
		l.s.hub.publish(l.id, line)
	}
}

// hub fans a running build's log lines and its end out to live readers.
type hub struct {
	mu      sync.Mutex
	streams map[string]map[*reader]bool
	closed  bool
}

// reader is one live reader. Its channel closes after the end event, or
// without one when the reader fell behind (it resumes with Last-Event-ID)
// or the service shut down.
type reader struct {
	ch chan event
}

// event is a log line, or the build's end (State set).
type event struct {
	Line  buildrecord.LogLine
	State buildrecord.State
}

// readerBuffer is how many events a reader may fall behind by.
const readerBuffer = 1024

func newHub() *hub { return &hub{streams: map[string]map[*reader]bool{}} }

func (h *hub) subscribe(id string) *reader {
	rd := &reader{ch: make(chan event, readerBuffer)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(rd.ch)
		return rd
	}
	if h.streams[id] == nil {
		h.streams[id] = map[*reader]bool{}
	}
	h.streams[id][rd] = true
	return rd
}

func (h *hub) unsubscribe(id string, rd *reader) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.streams[id][rd] {
		delete(h.streams[id], rd)
		close(rd.ch)
	}
	if len(h.streams[id]) == 0 {
		delete(h.streams, id)
	}
}

func (h *hub) publish(id string, line buildrecord.LogLine) {
	h.send(id, event{Line: line}, false)
}

// finish sends the end and lets the build's readers go.
func (h *hub) finish(id string, state buildrecord.State) {
	h.send(id, event{State: state}, true)
}

func (h *hub) send(id string, ev event, last bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for rd := range h.streams[id] {
		select {
		case rd.ch <- ev:
			if !last {
				continue
			}
		default: // fell behind: it ends and resumes from the records
		}
		delete(h.streams[id], rd)
		close(rd.ch)
	}
	if len(h.streams[id]) == 0 {
		delete(h.streams, id)
	}
}

// closeAll ends every reader: the service is shutting down.
func (h *hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for id, rds := range h.streams {
		for rd := range rds {
			close(rd.ch)
		}
		delete(h.streams, id)
	}
}
