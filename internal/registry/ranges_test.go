package registry_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Range reads of a blob held in the journal (memory), in a small file and
// in a large one: 206 with the bytes and Content-Range, 416 with
// "bytes */SIZE" for a range that is malformed or misses the blob, and the
// Range ignored (200) when an If-Range does not match.
func TestBlobRanges(t *testing.T) {
	f := newFixture(t, open())
	for _, size := range []int{64 << 10, 512 << 10, 2 << 20} {
		data := bytes.Repeat([]byte("0123456789abcdef"), size/16)
		layer := static.NewLayer(data, types.OCILayer)
		if err := remote.WriteLayer(f.ref(t, "r/g:x").Context(), layer); err != nil {
			t.Fatal(err)
		}
		url := f.srv.URL + "/v2/r/g/blobs/" + digestOf(data)
		all := fmt.Sprintf("bytes */%d", size)
		for _, tc := range []struct {
			rng, ifRange string
			status       int
			contentRange string
			body         []byte
		}{
			{"bytes=16-31", "", http.StatusPartialContent, fmt.Sprintf("bytes 16-31/%d", size), data[16:32]},
			{"bytes=-5", "", http.StatusPartialContent, fmt.Sprintf("bytes %d-%d/%d", size-5, size-1, size), data[size-5:]},
			{"bytes=7-", "", http.StatusPartialContent, fmt.Sprintf("bytes 7-%d/%d", size-1, size), data[7:]},
			{fmt.Sprintf("bytes=%d-", size), "", http.StatusRequestedRangeNotSatisfiable, all, nil},
			{"bytes=-0", "", http.StatusRequestedRangeNotSatisfiable, all, nil},
			{"bytes=9-3", "", http.StatusRequestedRangeNotSatisfiable, all, nil},
			{"bytes=x", "", http.StatusRequestedRangeNotSatisfiable, all, nil},
			{"bytes=1-2,x", "", http.StatusRequestedRangeNotSatisfiable, all, nil},
			{"lines=1-2", "", http.StatusRequestedRangeNotSatisfiable, all, nil},
			{"bytes=-0", `"sha256:other"`, http.StatusOK, "", data},
			{"bytes=16-31", `"` + digestOf(data) + `"`, http.StatusPartialContent, fmt.Sprintf("bytes 16-31/%d", size), data[16:32]},
		} {
			hdr := map[string]string{"Range": tc.rng}
			if tc.ifRange != "" {
				hdr["If-Range"] = tc.ifRange
			}
			resp := do(t, "GET", url, hdr, nil)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || resp.Header.Get("Content-Range") != tc.contentRange {
				t.Fatalf("%d bytes, Range %q If-Range %q: %s, Content-Range %q; want %d, %q", size, tc.rng, tc.ifRange, resp.Status, resp.Header.Get("Content-Range"), tc.status, tc.contentRange)
			}
			if tc.body != nil && !bytes.Equal(body, tc.body) {
				t.Fatalf("%d bytes, Range %q: got %d bytes, want %d", size, tc.rng, len(body), len(tc.body))
			}
		}
	}
}
