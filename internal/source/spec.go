// Package source fetches the code a service build compiles: a directory
// inside the server's workspace, an uploaded tar.gz, a git repository at a
// commit or ref (go-git, no git binary), or a Go module path@version
// through GOPROXY checked against the checksum database. Each is resolved
// when the build is submitted (so bad input is refused at once) and copied
// into the build's own directory when it runs.
//
// A Fetcher holds the server's side: the workspace root, the upload
// directory, the budgets (Limits: archives, and the bytes any fetch may
// write), the go command's environment, and for git the HTTP client and
// the hosts allowed (GitAllow; none: git is off; redirects are held to
// it too). Resolve refuses bad input with an error
// wrapping ErrInvalid whose one-line message names only what the client
// sent; Fetch checks the content again as it copies it, and every fetched
// tree is walked once more so that no symlink in it leaves it.
//
// It owns fetching and checking input alone: it does not build or store
// records.
package source

import "errors"

// Spec is a request's source: exactly one field is set.
type Spec struct {
	// Workspace is a directory relative to the server's --workspace.
	Workspace string `json:"workspace,omitempty"`
	// Upload is an ID from POST /api/v1/sources (or the multipart part
	// of the build request).
	Upload string `json:"upload,omitempty"`
	Git    *Git   `json:"git,omitempty"`
	// Module is a module path@version, e.g. example.com/app@v1.2.3.
	Module string `json:"module,omitempty"`
	// Subdir is the module's directory inside an upload or a git tree.
	Subdir string `json:"subdir,omitempty"`
}

// Git is a repository and what to check out of it.
type Git struct {
	URL string `json:"url"`
	// Ref is a branch, tag or full commit hash; "" means HEAD.
	Ref string `json:"ref,omitempty"`
}

// ErrInvalid marks a source refused as bad input (a client error: the
// service answers 4xx); every other error is the server's or the
// network's.
var ErrInvalid = errors.New("invalid source")
