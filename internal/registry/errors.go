package registry

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/kilnbuild/kiln/internal/store"
)

// apiError is one error of the distribution spec's wire format.
type apiError struct {
	Status     int    `json:"-"`
	RetryAfter string `json:"-"` // seconds, for 429
	Code       string `json:"code"`
	Message    string `json:"message"`
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

// codes maps the store's errors onto the spec's codes: the one table that
// decides what a client sees.
var codes = []struct {
	err    error
	status int
	code   string
}{
	{store.ErrNameInvalid, http.StatusBadRequest, "NAME_INVALID"},
	{store.ErrNameUnknown, http.StatusNotFound, "NAME_UNKNOWN"},
	{store.ErrTagInvalid, http.StatusBadRequest, "MANIFEST_INVALID"},
	{store.ErrDigestInvalid, http.StatusBadRequest, "DIGEST_INVALID"},
	{store.ErrBlobUnknown, http.StatusNotFound, "BLOB_UNKNOWN"},
	{store.ErrManifestUnknown, http.StatusNotFound, "MANIFEST_UNKNOWN"},
	{store.ErrManifestBlobUnknown, http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN"},
	{store.ErrManifestTooLarge, http.StatusRequestEntityTooLarge, "MANIFEST_INVALID"},
	{store.ErrManifestInvalid, http.StatusBadRequest, "MANIFEST_INVALID"},
	{store.ErrUploadUnknown, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN"},
	{store.ErrUploadInvalid, http.StatusBadRequest, "BLOB_UPLOAD_INVALID"},
}

func errUnauthorized(msg string) *apiError {
	return &apiError{Status: http.StatusUnauthorized, Code: "UNAUTHORIZED", Message: msg}
}

func errDenied(msg string) *apiError {
	return &apiError{Status: http.StatusForbidden, Code: "DENIED", Message: msg}
}

func errUnsupported(msg string) *apiError {
	return &apiError{Status: http.StatusMethodNotAllowed, Code: "UNSUPPORTED", Message: msg}
}

func errRangeInvalid(msg string) *apiError {
	return &apiError{Status: http.StatusRequestedRangeNotSatisfiable, Code: "BLOB_UPLOAD_INVALID", Message: msg}
}

// writeError answers with err in the spec's format. Errors the table does
// not know are logged and reported without their text.
func (r *Registry) writeError(w http.ResponseWriter, req *http.Request, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = &apiError{Status: http.StatusInternalServerError, Code: "UNKNOWN", Message: "internal error"}
		for _, c := range codes {
			if errors.Is(err, c.err) {
				ae = &apiError{Status: c.status, Code: c.code, Message: err.Error()}
				break
			}
		}
		if ae.Status == http.StatusInternalServerError {
			r.log.Error("registry request failed", "method", req.Method, "path", req.URL.Path, "err", err)
		}
	}
	if ae.RetryAfter != "" {
		w.Header().Set("Retry-After", ae.RetryAfter)
	}
	if ae.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="kiln"`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(ae.Status)
	if req.Method == http.MethodHead {
		return
	}
	json.NewEncoder(w).Encode(struct {
		Errors []*apiError `json:"errors"`
	}{[]*apiError{ae}})
}
