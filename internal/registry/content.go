package registry

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kilnbuild/kiln/internal/store"
)

func (r *Registry) getManifest(w http.ResponseWriter, req *http.Request, rt route) {
	desc, raw, err := r.st.GetManifest(rt.name, rt.ref)
	if err != nil {
		r.writeError(w, req, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", string(desc.MediaType))
	h.Set("Content-Length", strconv.FormatInt(desc.Size, 10))
	h.Set("Docker-Content-Digest", desc.Digest.String())
	h.Set("ETag", `"`+desc.Digest.String()+`"`)
	if req.Method == http.MethodGet {
		w.Write(raw)
	}
}

func (r *Registry) putManifest(w http.ResponseWriter, req *http.Request, rt route) {
	raw, err := io.ReadAll(io.LimitReader(req.Body, store.MaxManifestBytes+1))
	if err != nil {
		r.writeError(w, req, fmt.Errorf("%w: reading the body: %v", store.ErrManifestInvalid, err))
		return
	}
	desc, subject, err := r.st.PutManifest(rt.name, rt.ref, types.MediaType(req.Header.Get("Content-Type")), raw)
	if err != nil {
		r.writeError(w, req, err)
		return
	}
	h := w.Header()
	h.Set("Location", "/v2/"+rt.name+"/manifests/"+desc.Digest.String())
	h.Set("Docker-Content-Digest", desc.Digest.String())
	if subject != nil {
		h.Set("OCI-Subject", subject.Digest.String())
	}
	w.WriteHeader(http.StatusCreated)
}

func (r *Registry) deleteManifest(w http.ResponseWriter, req *http.Request, rt route) {
	if err := r.st.DeleteManifest(rt.name, rt.ref); err != nil {
		r.writeError(w, req, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (r *Registry) getBlob(w http.ResponseWriter, req *http.Request, rt route) {
	h, err := store.ParseDigest(rt.ref)
	if err != nil {
		r.writeError(w, req, err)
		return
	}
	if req.Method == http.MethodHead {
		// A client asking whether to push: StatBlob protects the blob
		// from gc until a manifest holds it.
		size, err := r.st.StatBlob(rt.name, h)
		if err != nil {
			r.writeError(w, req, err)
			return
		}
		hdr := w.Header()
		hdr.Set("Content-Type", "application/octet-stream")
		hdr.Set("Content-Length", strconv.FormatInt(size, 10))
		hdr.Set("Docker-Content-Digest", h.String())
		hdr.Set("ETag", `"`+h.String()+`"`)
		hdr.Set("Accept-Ranges", "bytes")
		return
	}
	blob, size, err := r.st.OpenBlob(rt.name, h)
	if err != nil {
		r.writeError(w, req, err)
		return
	}
	defer blob.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Docker-Content-Digest", h.String())
	w.Header().Set("ETag", `"`+h.String()+`"`)
	// A Range is checked here only when no condition (If-Range,
	// If-None-Match, ...) may turn the answer into a 200 or a 304.
	if rng := req.Header.Get("Range"); rng != "" && !conditional(req.Header) {
		if why := unsatisfiable(rng, size); why != "" {
			w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
			http.Error(w, "invalid range: "+why, http.StatusRequestedRangeNotSatisfiable)
			return
		}
	}
	// ServeContent answers Range requests and streams the blob. Given an
	// *os.File, it seeks twice to learn the size, and the connection sends
	// the file with sendfile, without copying (net/http writes the first
	// 512 bytes itself). A blob that fits in one copy buffer is read
	// through a SectionReader of the size known instead: two preads (the
	// 512 bytes, then the rest), no seeks. The journal's blobs are in
	// memory already.
	var content io.ReadSeeker = blob
	if f, ok := blob.(*os.File); ok && size <= smallBlob {
		content = io.NewSectionReader(f, 0, size)
	}
	http.ServeContent(w, req, "", time.Time{}, content)
}

// smallBlob is the size up to which a blob file is read and written
// (in io.Copy's 32 KiB buffer) rather than sent with sendfile. Above it, reads and writes take two system calls per 32 KiB
// and copy every byte through user space: a 600 kB blob took 38 instead
// of one sendfile.
const smallBlob = 32 << 10

func (r *Registry) deleteBlob(w http.ResponseWriter, req *http.Request, rt route) {
	h, err := store.ParseDigest(rt.ref)
	if err != nil {
		r.writeError(w, req, err)
		return
	}
	if err := r.st.DeleteBlob(rt.name, h); err != nil {
		r.writeError(w, req, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}
