package gobuild

import (
	"fmt"
	"strconv"
	"strings"
	"text/template"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kilnbuild/kiln/internal/vcs"
)

// TemplateData is what {{...}} in flags and ldflags can use. Every field
// ko v0.19.1 has holds ko's value:
//
//   - Env: the platform's CGO_ENABLED=0, GOOS, GOARCH (GOARM, GOAMD64),
//     then the caller's environment, then the build's env, later winning;
//     LDFLAGS is "" unless set. Any other missing key is an error.
//   - GoEnv: `go env` run with the caller's environment, its keys
//     overridden by Env's.
//   - Git: see GitData.
//   - Date: SOURCE_DATE_EPOCH's time, else the time the build started, in
//     RFC 3339 and the local time zone; Timestamp: the same in Unix seconds.
type TemplateData struct {
	Env       map[string]string
	GoEnv     map[string]string
	Git       GitData
	Date      string
	Timestamp int64
}

// GitData is the checkout as ko's templates see it, with kiln's own fields
// after ko's. Outside a checkout every field is zero, as ko's are (the
// commit date then is year 1).
type GitData struct {
	Branch          string // "HEAD" when detached
	Tag             string // `git describe --tags --abbrev=0`; "v0.0.0" when no tag is reachable
	ShortCommit     string // git's abbreviation
	FullCommit      string
	CommitDate      string // RFC 3339, UTC
	CommitTimestamp int64
	IsDirty         bool // git status lists anything, untracked files too
	IsClean         bool
	TreeState       string // "dirty" or "clean"

	Commit    string // the same as FullCommit
	Dirty     bool   // tracked files differ from HEAD, as provenance records it
	RemoteURL string // origin's URL, credentials removed
	Root      string // the checkout's top-level directory
}

// TemplateInput is what the template data is made of.
type TemplateInput struct {
	Environ  []string    // the caller's environment
	BuildEnv []string    // the build's env (a .ko.yaml's env)
	Platform v1.Platform // the platform being compiled
	// GoEnv is `go env` with the caller's environment (Builder.GoEnv);
	// nil when no template uses it.
	GoEnv map[string]string
	Git   vcs.Git
	Date  time.Time // see BuildDate
}

// BuildDate is the time {{.Date}} and {{.Timestamp}} give, as in ko: the
// time SOURCE_DATE_EPOCH in environ says, or start when it is unset or empty.
func BuildDate(environ []string, start time.Time) (time.Time, error) {
	s := lookupEnv(environ, "SOURCE_DATE_EPOCH")
	if s == "" {
		return start, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a Unix time in seconds: %w", s, ErrBadFlag)
	}
	return time.Unix(n, 0), nil
}

// NewTemplateData makes the data of in. An environment entry without "="
// is an error, as in ko.
func NewTemplateData(in TemplateInput) (TemplateData, error) {
	env := map[string]string{"LDFLAGS": ""}
	for _, list := range [][]string{koPlatformEnv(in.Platform), in.Environ, in.BuildEnv} {
		for _, kv := range list {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return TemplateData{}, fmt.Errorf("environment entry %q has no \"=\": %w", kv, ErrBadFlag)
			}
			env[k] = v
		}
	}
	var goEnv map[string]string
	if in.GoEnv != nil {
		goEnv = make(map[string]string, len(in.GoEnv))
		for k, v := range in.GoEnv {
			goEnv[k] = v
			if e, ok := env[k]; ok {
				goEnv[k] = e
			}
		}
	}
	date := in.Date.Local()
	return TemplateData{Env: env, GoEnv: goEnv, Git: newGitData(in.Git),
		Date: date.Format(time.RFC3339), Timestamp: date.Unix()}, nil
}

func newGitData(g vcs.Git) GitData {
	d := GitData{
		Branch: g.Branch, Tag: g.Tag, ShortCommit: g.ShortCommit, FullCommit: g.Commit,
		CommitDate: g.CommitDate.UTC().Format(time.RFC3339), CommitTimestamp: g.CommitDate.Unix(),
		IsDirty: g.IsDirty(), IsClean: g.IsClean(), TreeState: g.TreeState(),
		Commit: g.Commit, Dirty: g.Dirty, RemoteURL: g.RemoteURL, Root: g.Root,
	}
	if g.Commit != "" && d.Tag == "" {
		d.Tag = "v0.0.0" // ko's stand-in when git describe finds no tag
	}
	return d
}

// koPlatformEnv is the environment ko starts a build's from: GOARM only
// for arm variants v5 and up (v8 and up mean 7), GOAMD64 for any amd64
// variant.
func koPlatformEnv(p v1.Platform) []string {
	env := []string{"CGO_ENABLED=0", "GOOS=" + p.OS, "GOARCH=" + p.Architecture}
	switch {
	case p.Variant == "":
	case p.Architecture == "arm":
		if n, err := strconv.Atoi(strings.TrimPrefix(p.Variant, "v")); err == nil && strings.HasPrefix(p.Variant, "v") && n >= 5 {
			env = append(env, "GOARM="+strconv.Itoa(min(n, 7)))
		}
	case p.Architecture == "amd64":
		env = append(env, "GOAMD64="+p.Variant)
	}
	return env
}

// lookupEnv is the last value of key in environ, "" when unset.
func lookupEnv(environ []string, key string) string {
	v := ""
	for _, kv := range environ {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}

// Expand applies data to each of the templates. A missing key is an
// error rather than an empty string, so a typo does not ship silently.
func Expand(templates []string, data TemplateData) ([]string, error) {
	out := make([]string, 0, len(templates))
	for _, s := range templates {
		if !strings.Contains(s, "{{") {
			out = append(out, s)
			continue
		}
		tmpl, err := template.New("flag").Option("missingkey=error").Parse(s)
		if err != nil {
			return nil, fmt.Errorf("template %q: %v: %w", s, err, ErrBadFlag)
		}
		var b strings.Builder
		if err := tmpl.Execute(&b, data); err != nil {
			return nil, fmt.Errorf("template %q: %v: %w", s, err, ErrBadFlag)
		}
		out = append(out, b.String())
	}
	return out, nil
}
