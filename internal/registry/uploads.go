package registry

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kilnbuild/kiln/internal/store"
)

// upload is a store upload plus what the HTTP session needs. Its mutex
// serialises requests to one upload.
type upload struct {
	mu       sync.Mutex
	up       *store.Upload
	lastUsed time.Time
	done     bool
}

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
	up, err := r.st.NewUpload(rt.name)
	if err != nil {
		r.writeError(w, req, err)
		return
	}
	if d := q.Get("digest"); d != "" {
		h, err := store.ParseDigest(d)
		if err != nil {
			up.Cancel()
			r.writeError(w, req, err)
			return
		}
		if _, err := up.Write(req.Body); err != nil {
			up.Cancel()
			r.writeError(w, req, fmt.Errorf("%w: %v", store.ErrUploadInvalid, err))
			return
		}
		if err := up.Commit(h); err != nil {
			r.writeError(w, req, err)
			return
		}
		blobCreated(w, rt.name, h)
		return
	}
	r.mu.Lock()
	r.expireLocked()
	r.uploads[up.ID()] = &upload{up: up, lastUsed: time.Now()}
	r.mu.Unlock()
	uploadAccepted(w, rt.name, up, http.StatusAccepted)
}

// expireLocked drops uploads idle for longer than the TTL.
func (r *Registry) expireLocked() {
	for id, u := range r.uploads {
		if u.mu.TryLock() {
			if time.Since(u.lastUsed) > r.uploadTTL {
				u.up.Cancel()
				u.done = true
				delete(r.uploads, id)
			}
			u.mu.Unlock()
		}
	}
}

// session finds upload id of repository name and locks it.
func (r *Registry) session(name, id string) (*upload, error) {
	r.mu.Lock()
	u, ok := r.uploads[id]
	r.mu.Unlock()
	if !ok || u.up.Repository() != name {
		return nil, fmt.Errorf("%w: %q", store.ErrUploadUnknown, id)
	}
	u.mu.Lock()
	if u.done {
		u.mu.Unlock()
		return nil, fmt.Errorf("%w: %q", store.ErrUploadUnknown, id)
	}
	u.lastUsed = time.Now()
	return u, nil
}

func (r *Registry) forget(u *upload) {
	u.done = true
	r.mu.Lock()
	delete(r.uploads, u.up.ID())
	r.mu.Unlock()
}

// checkRange enforces a chunk's Content-Range: it must start where the
// upload ends.
func checkRange(req *http.Request, u *upload) error {
	cr := req.Header.Get("Content-Range")
	if cr == "" {
		return nil
	}
	cr = strings.TrimPrefix(cr, "bytes ")
	start, end, ok := strings.Cut(cr, "-")
	s, err1 := strconv.ParseInt(start, 10, 64)
	e, err2 := strconv.ParseInt(end, 10, 64)
	if !ok || err1 != nil || err2 != nil || e < s {
		return errRangeInvalid(fmt.Sprintf("malformed Content-Range %q: want START-END", req.Header.Get("Content-Range")))
	}
	if s != u.up.Size() {
		return errRangeInvalid(fmt.Sprintf("chunk starts at %d but the upload has %d bytes", s, u.up.Size()))
	}
	return nil
}

// receive appends the request's body to u, which must start where u ends
// when it says where it starts (Content-Range).
func (r *Registry) receive(w http.ResponseWriter, req *http.Request, u *upload) bool {
	if err := checkRange(req, u); err != nil {
		setRange(w, u.up)
		r.writeError(w, req, err)
		return false
	}
	if _, err := u.up.Write(req.Body); err != nil {
		r.writeError(w, req, fmt.Errorf("%w: %v", store.ErrUploadInvalid, err))
		return false
	}
	return true
}

func (r *Registry) patchUpload(w http.ResponseWriter, req *http.Request, rt route) {
	u, err := r.session(rt.name, rt.ref)
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
	u, err := r.session(rt.name, rt.ref)
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
	r.forget(u)
	if err := u.up.Commit(h); err != nil {
		r.writeError(w, req, err)
		return
	}
	blobCreated(w, rt.name, h)
}

func (r *Registry) uploadStatus(w http.ResponseWriter, req *http.Request, rt route) {
	u, err := r.session(rt.name, rt.ref)
	if err != nil {
		r.writeError(w, req, err)
		return
	}
	defer u.mu.Unlock()
	uploadAccepted(w, rt.name, u.up, http.StatusNoContent)
}

func (r *Registry) cancelUpload(w http.ResponseWriter, req *http.Request, rt route) {
	u, err := r.session(rt.name, rt.ref)
	if err != nil {
		r.writeError(w, req, err)
		return
	}
	defer u.mu.Unlock()
	r.forget(u)
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
