package verify

import (
	"errors"
	"fmt"
	"strings"

	"github.com/kilnbuild/kiln/internal/provenance"
)

// ErrProvenance means the provenance does not say what was required.
var ErrProvenance = errors.New("provenance check failed")

// Provenance checks the builder id, the build type and, when sourceRepo is
// set, that the recorded source repository is that one.
func Provenance(p provenance.Predicate, builderID, sourceRepo string) error {
	if got := p.RunDetails.Builder.ID; got != builderID {
		return fmt.Errorf("%w: builder is %q, want %q", ErrProvenance, got, builderID)
	}
	if got := p.BuildDefinition.BuildType; got != provenance.BuildType {
		return fmt.Errorf("%w: build type is %q, want %q", ErrProvenance, got, provenance.BuildType)
	}
	if sourceRepo == "" {
		return nil
	}
	src, ok := p.Dependency(provenance.DepSource)
	if !ok {
		return fmt.Errorf("%w: no source repository recorded, want %s", ErrProvenance, sourceRepo)
	}
	if normalizeRepo(strings.TrimPrefix(src.URI, "git+")) != normalizeRepo(sourceRepo) {
		return fmt.Errorf("%w: source is %s, want %s", ErrProvenance, strings.TrimPrefix(src.URI, "git+"), sourceRepo)
	}
	return nil
}

// normalizeRepo compares repository URLs without case, a trailing slash or
// a trailing .git (in any case: lower first, then trim).
func normalizeRepo(s string) string {
	s = strings.TrimRight(strings.ToLower(strings.TrimSpace(s)), "/")
	return strings.TrimRight(strings.TrimSuffix(s, ".git"), "/")
}
