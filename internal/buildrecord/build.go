package buildrecord

import (
	"encoding/json"
	"time"
)

// State is where a build is in its life:
// queued → running → succeeded | failed | cancelled | timed_out | interrupted.
type State string

const (
	Queued      State = "queued"
	Running     State = "running"
	Succeeded   State = "succeeded"
	Failed      State = "failed"
	Cancelled   State = "cancelled"
	TimedOut    State = "timed_out"
	Interrupted State = "interrupted"
)

// Final reports whether s is an end state.
func (s State) Final() bool {
	switch s {
	case Succeeded, Failed, Cancelled, TimedOut, Interrupted:
		return true
	}
	return false
}

// Valid reports whether s is one of the states above.
func (s State) Valid() bool { return s == Queued || s == Running || s.Final() }

// Build is one build's record, as the API returns it.
type Build struct {
	ID string `json:"id"` // sortable: newer builds have greater IDs
	// State and the time the build entered each state it has been in.
	State State               `json:"state"`
	Times map[State]time.Time `json:"times"`

	// Request is the submitted request, validated, as the service
	// decoded it (packages, platforms, base, tags, naming, compression,
	// sign, output, timeout): what a retry submits again.
	Request json.RawMessage `json:"request"`
	// Packages are the request's packages, kept apart for filtering.
	Packages []string `json:"packages"`
	Source   Source   `json:"source"`
	// RetryOf is the ID of the build this one retries.
	RetryOf string `json:"retryOf,omitempty"`

	Results []Result `json:"results,omitempty"`
	Phases  Phases   `json:"phases"`
	Error   *Error   `json:"error,omitempty"`
	// ServerVersion is the version of the server that ran (or queued) it.
	ServerVersion string `json:"serverVersion"`
}

// Source is where a build's code came from, resolved.
type Source struct {
	Kind string `json:"kind"` // workspace, upload, git or module
	// Ref is what was asked for: the workspace path, the upload ID, the
	// git URL, or the module path@version as given.
	Ref string `json:"ref"`
	// Revision is what Ref resolved to: the git commit or the module's
	// version; empty for workspaces and uploads.
	Revision string `json:"revision,omitempty"`
	// Hash identifies the content: the module's h1: hash from the
	// checksum database, the upload's sha256; empty for a workspace.
	Hash string `json:"hash,omitempty"`
	// Subdir is the module's directory inside a git tree or an upload
	// ("" is its root).
	Subdir string `json:"subdir,omitempty"`
}

// Result is one package's published image.
type Result struct {
	ImportPath string  `json:"importPath"`
	Ref        string  `json:"ref"`    // REPO@sha256:…
	Digest     string  `json:"digest"` // the index (or the image for one platform)
	Images     []Image `json:"images"`
	// Signature and Attestations name where the signature and the SBOM
	// and provenance attestations were pushed, when the build signed.
	Signature    string   `json:"signature,omitempty"`
	Attestations []string `json:"attestations,omitempty"`
}

// Image is one platform's image of a Result.
type Image struct {
	Platform string `json:"platform"`
	Digest   string `json:"digest"`
	Bytes    int64  `json:"bytes"` // compressed bytes of all its layers
}

// Phases are how long each phase of a build took.
type Phases struct {
	QueueWait   Duration `json:"queueWait"`
	SourceFetch Duration `json:"sourceFetch"`
	Compile     Duration `json:"compile"`
	Layer       Duration `json:"layer"`
	Push        Duration `json:"push"`
	Sign        Duration `json:"sign"`
}

// Duration is a time.Duration that is JSON milliseconds.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(float64(d) / float64(time.Millisecond))
}

func (d *Duration) UnmarshalJSON(b []byte) error {
	var ms float64
	if err := json.Unmarshal(b, &ms); err != nil {
		return err
	}
	*d = Duration(ms * float64(time.Millisecond))
	return nil
}

// Error is why a build failed: one line, and the compiler's output.
type Error struct {
	Message string `json:"message"`
	Output  string `json:"output,omitempty"`
}

// Filter selects builds for List, newest first. Zero fields match all.
type Filter struct {
	State      State
	Package    string // an exact import path or ./path as submitted
	SourceKind string
	// Cursor is the Next of an earlier page: builds older than it.
	Cursor string
	Limit  int // 0 means 50; at most 500
}

// Page is one page of List.
type Page struct {
	Builds []*Build
	Next   string // "" when there is no more
}

// LogLine is one line of a build's log; Seq counts from 1 within a build.
type LogLine struct {
	Seq  int64
	Text string
}
