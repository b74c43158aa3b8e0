package service

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
)

// apiError is an error the client is told about. Every other error a
// handler returns is logged and answered as "internal error": no path or
// stack reaches a client.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

// errorf is a client error with the wire's code for status.
func errorf(status int, format string, args ...any) *apiError {
	return &apiError{status: status, code: codes[status], message: fmt.Sprintf(format, args...)}
}

// codes is the wire's error code table: one code per status.
var codes = map[int]string{
	http.StatusBadRequest:            "invalid_request",
	http.StatusUnauthorized:          "unauthorized",
	http.StatusForbidden:             "forbidden",
	http.StatusNotFound:              "not_found",
	http.StatusMethodNotAllowed:      "method_not_allowed",
	http.StatusConflict:              "conflict",
	http.StatusRequestEntityTooLarge: "too_large",
	http.StatusUnsupportedMediaType:  "unsupported_media_type",
	http.StatusTooManyRequests:       "queue_full",
	http.StatusInternalServerError:   "internal",
	http.StatusServiceUnavailable:    "unavailable",
}

// errorBody is the JSON of every error answer.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// writeError answers err: an *apiError as it says, anything else as an
// internal error, logged with the route.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, route string, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		log.Error("request failed", "route", route, "method", r.Method, "error", err)
		ae = errorf(http.StatusInternalServerError, "internal error")
	}
	var body errorBody
	body.Error.Code, body.Error.Message = ae.code, ae.message
	writeJSON(w, ae.status, body)
}
