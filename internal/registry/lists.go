package registry

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kilnbuild/kiln/internal/store"
)

// page applies the spec's pagination (?n=COUNT&last=ITEM) to a sorted
// list and sets the Link header when more remain.
func page(w http.ResponseWriter, req *http.Request, items []string) []string {
	q := req.URL.Query()
	if last := q.Get("last"); last != "" {
		items = items[sort.SearchStrings(items, last):]
		if len(items) > 0 && items[0] == last {
			items = items[1:]
		}
	}
	n, err := strconv.Atoi(q.Get("n"))
	if err != nil || n < 0 || n >= len(items) {
		return items
	}
	items = items[:n]
	if n > 0 {
		next := url.Values{"n": {strconv.Itoa(n)}, "last": {items[n-1]}}
		w.Header().Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, req.URL.Path, next.Encode()))
	}
	return items
}

func writeJSON(w http.ResponseWriter, contentType string, v any) {
	w.Header().Set("Content-Type", contentType)
	json.NewEncoder(w).Encode(v)
}

func (r *Registry) tags(w http.ResponseWriter, req *http.Request, rt route) {
	tags, err := r.st.Tags(rt.name)
	if err != nil {
		r.writeError(w, req, err)
		return
	}
	writeJSON(w, "application/json", struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{rt.name, page(w, req, tags)})
}

func (r *Registry) catalog(w http.ResponseWriter, req *http.Request, authed bool) {
	all, err := r.st.Catalog()
	if err != nil {
		r.writeError(w, req, err)
		return
	}
	visible := all[:0]
	for _, n := range all {
		if r.access.canRead(authed, n) {
			visible = append(visible, n)
		}
	}
	writeJSON(w, "application/json", struct {
		Repositories []string `json:"repositories"`
	}{page(w, req, visible)})
}

func (r *Registry) referrers(w http.ResponseWriter, req *http.Request, rt route) {
	h, err := store.ParseDigest(rt.ref)
	if err != nil {
		r.writeError(w, req, err)
		return
	}
	refs, err := r.st.Referrers(rt.name, h)
	if err != nil {
		r.writeError(w, req, err)
		return
	}
	if want := req.URL.Query().Get("artifactType"); want != "" {
		kept := refs[:0]
		for _, d := range refs {
			if d.ArtifactType == want {
				kept = append(kept, d)
			}
		}
		refs = kept
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	if refs == nil {
		refs = []v1.Descriptor{}
	}
	writeJSON(w, string(types.OCIImageIndex), v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: refs})
}
