package server

import (
	"io"
	"net/http"
	"time"
)

// paced bounds the time a request may take without killing large blob
// pushes and pulls: rather than one ReadTimeout/WriteTimeout for the whole
// request, each read of the body and each write of the response gets a
// deadline (through http.ResponseController) that moves as data flows. A
// read or write may wait at most idle; and a request must move at least
// minRate bytes a second each way, counted from its start after a grace of
// idle (so a body trickled a byte at a time is cut off after about idle,
// and a 10 GiB push at a steady minRate or better is not). minRate 0 keeps
// the idle rule alone.
func paced(h http.Handler, idle time.Duration, minRate int64) http.Handler {
	if idle <= 0 {
		return h
	}
	// Responses sent from a file go out with sendfile in chunks small
	// enough to meet the rule, each under its own deadline.
	chunk := int64(1 << 20)
	if minRate > 0 {
		chunk = min(max(minRate*int64(idle/time.Second)/2, 64<<10), 8<<20)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		start := time.Now()
		rc := http.NewResponseController(w)
		pw := &pacedWriter{ResponseWriter: w, rc: rc, pace: pace{start: start, idle: idle, rate: minRate}, chunk: chunk}
		if req.Body != nil && req.Body != http.NoBody {
			req.Body = &pacedBody{ReadCloser: req.Body, rc: rc, pace: pace{start: start, idle: idle, rate: minRate}}
		}
		// No deadline from an earlier request on this connection holds
		// while the handler works before it writes.
		rc.SetWriteDeadline(time.Time{})
		h.ServeHTTP(pw, req)
		// What the server still flushes after the handler is bounded too.
		rc.SetWriteDeadline(time.Now().Add(idle))
	})
}

// pace computes deadlines for one direction of one request.
type pace struct {
	start time.Time
	idle  time.Duration
	rate  int64 // bytes a second; 0: no rate rule
	done  int64 // bytes moved so far
}

// deadline is when an operation that may move next more bytes must end.
func (p *pace) deadline(next int64) time.Time {
	d := time.Now().Add(p.idle)
	if p.rate > 0 {
		owed := time.Duration(float64(p.done+next) / float64(p.rate) * float64(time.Second))
		if byRate := p.start.Add(p.idle + owed); byRate.Before(d) {
			d = byRate
		}
	}
	return d
}

type pacedBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	pace pace
}

func (b *pacedBody) Read(p []byte) (int, error) {
	b.rc.SetReadDeadline(b.pace.deadline(int64(len(p))))
	n, err := b.ReadCloser.Read(p)
	b.pace.done += int64(n)
	if err == io.EOF {
		// The body is done: the server's own read (for the next
		// request or a closed connection) must not time out.
		b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

type pacedWriter struct {
	http.ResponseWriter
	rc    *http.ResponseController
	pace  pace
	chunk int64
}

// Unwrap lets http.ResponseController reach the connection.
func (w *pacedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *pacedWriter) WriteHeader(code int) {
	w.rc.SetWriteDeadline(w.pace.deadline(0))
	w.ResponseWriter.WriteHeader(code)
}

func (w *pacedWriter) Write(p []byte) (int, error) {
	w.rc.SetWriteDeadline(w.pace.deadline(int64(len(p))))
	n, err := w.ResponseWriter.Write(p)
	w.pace.done += int64(n)
	return n, err
}

// ReadFrom keeps the connection's sendfile path: src (or what an
// io.LimitedReader wraps, unwrapped once so the kernel still sees a file)
// is sent chunk by chunk, each under a fresh deadline.
func (w *pacedWriter) ReadFrom(src io.Reader) (int64, error) {
	rf, ok := w.ResponseWriter.(io.ReaderFrom)
	if !ok {
		return io.Copy(writerOnly{w}, src)
	}
	lr, limited := src.(*io.LimitedReader)
	var total int64
	for {
		inner, chunk := src, w.chunk
		if limited {
			if lr.N <= 0 {
				return total, nil
			}
			inner, chunk = lr.R, min(chunk, lr.N)
		}
		w.rc.SetWriteDeadline(w.pace.deadline(chunk))
		n, err := rf.ReadFrom(&io.LimitedReader{R: inner, N: chunk})
		total += n
		w.pace.done += n
		if limited {
			lr.N -= n
		}
		if err != nil || n < chunk {
			return total, err
		}
	}
}

// writerOnly hides ReadFrom, so io.Copy calls Write.
type writerOnly struct{ io.Writer }
