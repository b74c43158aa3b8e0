package registry

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kilnbuild/kiln/internal/store"
)

// startUpload answers POST /v2/NAME/blobs/uploads/: a cross-repository
// mount, a monolithic upload (?digest=), or a session for PATCH and PUT.
func (r *Registry) startUpload(w http.ResponseWriter, req *http.Request, rt route, authed bool) {
	if rt.ref != "" {
		r.writeError(w, req, errUnsupported("POST starts an upload at /v2/NAME/blobs/uploads/"))
		return
	}
	q := req.URL.Query()
	if mount := q.Get("mount"); mount != "" {
		h, err := store.ParseDigest(mount)
		if err != nil {
			r.writeError(w, req, err)
			return
		}
		from := q.Get("from")
		if from == "" {
			// No source named: mount from any repository the client may read.
			from, _ = r.st.FindBlob(h, func(name string) bool { return r.access.canRead(authed, name) })
		}
		if from != "" && store.ValidName(from) == nil && r.access.canRead(authed, from) {
			if err := r.st.MountBlob(from, rt.name, h); err == nil {
				blobCreated(w, rt.name, h)
				return
			}
		}
		// Not mountable: fall back to an upload session, as the spec says.
	}
	d := q.Get("digest")
	client := clientOf(req)
	if d == "" {
		// A session: take its place before anything is staged.
		if err := r.sessions.reserve(client); err != nil {
			r.writeError(w, req, err)
			return
		}
	}
	up, err := r.st.NewUpload(rt.name)
	if err != nil {
		if d == "" {
			r.sessions.release(client)
		}
		r.writeError(w, req, err)
		return
	}
	up.LimitMemory(r.mem)
	if d != "" {
		h, err := store.ParseDigest(d)
		if err != nil {
			up.Cancel()
			r.writeError(w, req, err)
			return
		}
		if err := r.write(req, up, -1); err != nil {
			up.Cancel()
			r.writeError(w, req, err)
			return
		}
		if err := up.Commit(h); err != nil {
			r.writeError(w, req, err)
			return
		}
		blobCreated(w, rt.name, h)
		return
	}
	r.sessions.add(up, client)
	uploadAccepted(w, rt.name, up, http.StatusAccepted)
}

// checkRange enforces a chunk's Content-Range: it must start where the
// upload ends, and end where the body does. It returns the chunk's length,
// or -1 when there is no Content-Range.
func checkRange(req *http.Request, u *upload) (int64, error) {
	cr := req.Header.Get("Content-Range")
	if cr == "" {
		return -1, nil
	}
	cr = strings.TrimPrefix(cr, "bytes ")
	start, end, ok := strings.Cut(cr, "-")
	s, err1 := strconv.ParseInt(start, 10, 64)
	e, err2 := strconv.ParseInt(end, 10, 64)
	if !ok || err1 != nil || err2 != nil || s < 0 || e < s {
		return 0, errRangeInvalid(fmt.Sprintf("malformed Content-Range %q: want START-END", req.Header.Get("Content-Range")))
	}
	if s != u.up.Size() {
		return 0, errRangeInvalid(fmt.Sprintf("chunk starts at %d but the upload has %d bytes", s, u.up.Size()))
	}
	if n := e - s + 1; req.ContentLength >= 0 && req.ContentLength != n {
		return 0, errRangeInvalid(fmt.Sprintf("Content-Range %d-%d is %d bytes but the body is %d", s, e, n, req.ContentLength))
	}
	return e - s + 1, nil
}

// write appends the request's body to up: want bytes exactly when want is
// not -1 (a body of unknown length that ends early or runs on is refused
// with 416), never beyond Limits.MaxBlobSize.
func (r *Registry) write(req *http.Request, up *store.Upload, want int64) error {
	if req.Body == nil || req.Body == http.NoBody {
		// Nothing to read (and no copy buffer to allocate).
		if want > 0 {
			return errRangeInvalid(fmt.Sprintf("Content-Range says %d bytes but the body is empty", want))
		}
		return nil
	}
	room := r.limits.MaxBlobSize - up.Size()
	limit := room + 1
	if want >= 0 {
		limit = min(limit, want+1)
	}
	n, err := up.Write(io.LimitReader(req.Body, limit))
	if err != nil {
		return fmt.Errorf("%w: %v", store.ErrUploadInvalid, err)
	}
	if n > room {
		return &apiError{Status: http.StatusRequestEntityTooLarge, Code: "SIZE_INVALID",
			Message: fmt.Sprintf("the blob would be larger than the limit of %d bytes", r.limits.MaxBlobSize)}
	}
	if want >= 0 && n != want {
		return errRangeInvalid(fmt.Sprintf("Content-Range says %d bytes but the body is not (%d read)", want, n))
	}
	return nil
}

// receive appends the request's body to u, which must start where u ends
// when it says where it starts (Content-Range).
func (r *Registry) receive(w http.ResponseWriter, req *http.Request, u *upload) bool {
	want, err := checkRange(req, u)
	if err == nil {
		err = r.write(req, u.up, want)
	}
	if err != nil {
		setRange(w, u.up)
		r.writeError(w, req, err)
		return false
	}
	return true
}

func (r *Registry) patchUpload(w http.ResponseWriter, req *http.Request, rt route) {
	u, err := r.sessions.find(rt.name, rt.ref)
	if err != nil {
		r.writeError(w, req, err)
		return
	}
	defer u.mu.Unlock()
	if !r.receive(w, req, u) {
		return
	}
	uploadAccepted(w, rt.name, u.up, http.StatusAccepted)
}

func (r *Registry) finishUpload(w http.ResponseWriter, req *http.Request, rt route) {
	u, err := r.sessions.find(rt.name, rt.ref)
	if err != nil {
		r.writeError(w, req, err)
		return
	}
	defer u.mu.Unlock()
	h, err := store.ParseDigest(req.URL.Query().Get("digest"))
	if err != nil {
		r.writeError(w, req, err)
		return
	}
	if !r.receive(w, req, u) {
		return
	}
	r.sessions.forget(u)
	if err := u.up.Commit(h); err != nil {
		r.writeError(w, req, err)
		return
	}
	blobCreated(w, rt.name, h)
}

func (r *Registry) uploadStatus(w http.ResponseWriter, req *http.Request, rt route) {
	u, err := r.sessions.find(rt.name, rt.ref)
	if err != nil {
		r.writeError(w, req, err)
		return
	}
	defer u.mu.Unlock()
	uploadAccepted(w, rt.name, u.up, http.StatusNoContent)
}

func (r *Registry) cancelUpload(w http.ResponseWriter, req *http.Request, rt route) {
	u, err := r.sessions.find(rt.name, rt.ref)
	if err != nil {
		r.writeError(w, req, err)
		return
	}
	defer u.mu.Unlock()
	r.sessions.forget(u)
	u.up.Cancel()
	w.WriteHeader(http.StatusNoContent)
}

func setRange(w http.ResponseWriter, up *store.Upload) {
	end := up.Size() - 1
	if end < 0 {
		end = 0
	}
	w.Header().Set("Range", fmt.Sprintf("0-%d", end))
}

func uploadAccepted(w http.ResponseWriter, name string, up *store.Upload, status int) {
	h := w.Header()
	h.Set("Location", "/v2/"+name+"/blobs/uploads/"+up.ID())
	h.Set("Docker-Upload-UUID", up.ID())
	h.Set("Content-Length", "0")
	setRange(w, up)
	w.WriteHeader(status)
}

func blobCreated(w http.ResponseWriter, name string, h v1.Hash) {
	w.Header().Set("Location", "/v2/"+name+"/blobs/"+h.String())
	w.Header().Set("Docker-Content-Digest", h.String())
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}
