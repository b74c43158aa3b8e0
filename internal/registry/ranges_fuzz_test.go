package registry

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzUnsatisfiable: a Range header that unsatisfiable lets through gets
// from http.ServeContent a 200 or a 206 whose every Content-Range is
// well formed (first ≤ last < size), never a 416 without the blob's size.
func FuzzUnsatisfiable(f *testing.F) {
	for _, s := range []string{"bytes=0-9", "bytes=-0", "bytes=-5", "bytes=5-", "bytes=9-3", "bytes=x", "bytes=1-2,4-5", "items=1-2", "bytes= 1-2", "bytes=+1-2"} {
		f.Add(s, int64(10))
	}
	contentRange := regexp.MustCompile(`^bytes ([0-9]+)-([0-9]+)/([0-9]+)$`)
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 || size > 1<<16 {
			return
		}
		why := unsatisfiable(h, size)
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Range", h)
		rec := httptest.NewRecorder()
		http.ServeContent(rec, req, "", time.Time{}, strings.NewReader(strings.Repeat("x", int(size))))
		if why != "" {
			return
		}
		switch rec.Code {
		case http.StatusOK:
		case http.StatusPartialContent:
			if cr := rec.Header().Get("Content-Range"); cr != "" {
				m := contentRange.FindStringSubmatch(cr)
				if m == nil {
					t.Fatalf("Range %q, size %d: Content-Range %q", h, size, cr)
				}
				first, _ := strconv.ParseInt(m[1], 10, 64)
				last, _ := strconv.ParseInt(m[2], 10, 64)
				if first > last || last >= size {
					t.Fatalf("Range %q, size %d: Content-Range %q", h, size, cr)
				}
			}
		default:
			t.Fatalf("Range %q, size %d: unsatisfiable let it through, ServeContent answered %d", h, size, rec.Code)
		}
	})
}
