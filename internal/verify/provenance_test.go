package verify_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/provenance"
	"github.com/kilnbuild/kiln/internal/verify"
)

func predicate(sourceURL, commit string) provenance.Predicate {
	return provenance.New(provenance.Input{
		Params:    provenance.ExternalParameters{Package: "example.com/hello/cmd/hello", Base: "static"},
		SourceURL: sourceURL, Commit: commit, GoVersion: "go1.26.0",
		Started: time.Unix(10, 0), Finished: time.Unix(20, 0),
	})
}

func TestProvenance(t *testing.T) {
	const commit = "0123456789abcdef0123456789abcdef01234567"
	const repo = "https://github.com/org/repo"
	otherBuildType := predicate(repo, commit)
	otherBuildType.BuildDefinition.BuildType = "https://example.com/other-build-type"

	for _, tc := range []struct {
		name       string
		pred       provenance.Predicate
		builderID  string
		sourceRepo string
		mention    string // "" means the check passes
	}{
		{"match", predicate(repo, commit), provenance.BuilderID, repo, ""},
		{"no source asked", predicate(repo, commit), provenance.BuilderID, "", ""},
		{"no source asked, none recorded", predicate("", ""), provenance.BuilderID, "", ""},
		{"builder mismatch", predicate(repo, commit), "https://github.com/other/builder", "", `builder is "https://github.com/kilnbuild/kiln", want "https://github.com/other/builder"`},
		{"builder prefix is no match", predicate(repo, commit), provenance.BuilderID + "/x", "", "builder is"},
		{"build type mismatch", otherBuildType, provenance.BuilderID, "", `build type is "https://example.com/other-build-type"`},
		{"source mismatch", predicate(repo, commit), provenance.BuilderID, "https://github.com/org/other", "source is https://github.com/org/repo, want https://github.com/org/other"},
		{"source is a prefix", predicate(repo+"2", commit), provenance.BuilderID, repo, "source is https://github.com/org/repo2"},
		{"source on another host", predicate("https://gitlab.com/org/repo", commit), provenance.BuilderID, repo, "source is https://gitlab.com/org/repo"},
		{"recorded with .git", predicate(repo+".git", commit), provenance.BuilderID, repo, ""},
		{"asked with .git", predicate(repo, commit), provenance.BuilderID, repo + ".git", ""},
		{"recorded with a slash", predicate(repo+"/", commit), provenance.BuilderID, repo, ""},
		{"asked with .git/", predicate(repo, commit), provenance.BuilderID, repo + ".git/", ""},
		{"case differs", predicate("https://GitHub.com/Org/Repo", commit), provenance.BuilderID, repo, ""},
		{"case differs, upper .GIT", predicate("https://github.com/Org/Repo.GIT", commit), provenance.BuilderID, repo, ""},
		{"surrounding space", predicate(repo, commit), provenance.BuilderID, " " + repo + "\n", ""},
		{"no commit: no source recorded", predicate(repo, ""), provenance.BuilderID, repo, "no source repository recorded, want https://github.com/org/repo"},
		{"local source", predicate("", commit), provenance.BuilderID, repo, "source is file:local"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := verify.Provenance(tc.pred, tc.builderID, tc.sourceRepo)
			if tc.mention == "" {
				if err != nil {
					t.Fatalf("err = %v, want none", err)
				}
				return
			}
			if !errors.Is(err, verify.ErrProvenance) {
				t.Fatalf("err = %v, want ErrProvenance", err)
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("error %q does not mention %q", err, tc.mention)
			}
		})
	}
}
