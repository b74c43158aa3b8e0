package gobuild

import (
	"fmt"
	"strings"
	"text/template"
	"time"

	"github.com/kilnbuild/kiln/internal/vcs"
)

// TemplateData is what {{...}} in flags and ldflags can use, as in ko:
// {{.Env.NAME}}, {{.Git.Commit}} / ShortCommit / Tag / Branch / TreeState,
// {{.Date}} (RFC 3339) and {{.Timestamp}} (Unix seconds).
type TemplateData struct {
	Env       map[string]string
	Git       vcs.Git
	Date      string
	Timestamp int64
}

// NewTemplateData builds the data from an environment list and a build time.
func NewTemplateData(env []string, git vcs.Git, now time.Time) TemplateData {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return TemplateData{Env: m, Git: git, Date: now.UTC().Format(time.RFC3339), Timestamp: now.Unix()}
}

// Expand applies data to each of the templates. A missing env key is an
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
