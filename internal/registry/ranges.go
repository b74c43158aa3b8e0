package registry

import (
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
)

// conditional reports whether h has a precondition (an If-… header).
func conditional(h http.Header) bool {
	for k := range h {
		if strings.HasPrefix(k, "If-") {
			return true
		}
	}
	return false
}

// unsatisfiable reports why the Range header h asks for nothing of a blob
// of size bytes, or "" when http.ServeContent may answer it. It catches
// what ServeContent gets wrong for a blob: "bytes=-0" (a suffix of no
// bytes), which it answers 206 with an inverted Content-Range, and a
// malformed header, which it answers 416 without the blob's size. Ranges
// that merely miss the blob are left to ServeContent, which answers them
// 416 with Content-Range "bytes */SIZE".
func unsatisfiable(h string, size int64) string {
	specs, ok := strings.CutPrefix(h, "bytes=")
	if !ok {
		return "want bytes=FIRST-LAST, bytes=FIRST- or bytes=-SUFFIX"
	}
	satisfiable := false
	for spec := range strings.SplitSeq(specs, ",") {
		first, last, ok := strings.Cut(textproto.TrimString(spec), "-")
		if !ok {
			return "want FIRST-LAST, FIRST- or -SUFFIX, not " + strconv.Quote(spec)
		}
		first, last = textproto.TrimString(first), textproto.TrimString(last)
		if first == "" {
			n, err := strconv.ParseInt(last, 10, 64)
			if err != nil || n < 0 {
				return "bad suffix length " + strconv.Quote(last)
			}
			satisfiable = satisfiable || n > 0 && size > 0
			continue
		}
		i, err := strconv.ParseInt(first, 10, 64)
		if err != nil || i < 0 {
			return "bad first byte " + strconv.Quote(first)
		}
		if last != "" {
			j, err := strconv.ParseInt(last, 10, 64)
			if err != nil || j < i {
				return "bad last byte " + strconv.Quote(last)
			}
		}
		satisfiable = satisfiable || i < size
	}
	if !satisfiable {
		return "no range within the blob's " + strconv.FormatInt(size, 10) + " bytes"
	}
	return ""
}
