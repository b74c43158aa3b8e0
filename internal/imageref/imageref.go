package imageref

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// LocalRepo is the repository prefix of images in the local store.
const LocalRepo = "kiln.local"

// Kind says where a reference points.
type Kind string

// The kinds of reference, with their grammar.
const (
	Registry      Kind = "registry"       // REGISTRY/REPO[:TAG|@DIGEST]
	OCI           Kind = "oci"            // oci:DIR[:NAME]
	OCIArchive    Kind = "oci-archive"    // oci-archive:FILE[:NAME]
	DockerArchive Kind = "docker-archive" // docker-archive:FILE[:REPO:TAG]
	Store         Kind = "store"          // kiln.local/NAME[:TAG|@DIGEST]
)

// Ref is a parsed reference.
type Ref struct {
	Kind Kind
	// Path is the layout directory (oci) or the file (archives), joined to
	// the directory Parse resolved relative paths against; "" otherwise.
	Path string
	// Name follows Path after a ':' (oci, archives; "" when none is
	// given); for store and registry references it is the whole reference.
	Name string
}

// Parse reads ref. For oci:, oci-archive: and docker-archive: the rest is
// PATH[:NAME]: the whole rest is the path when it exists, else the path
// ends at the first ':' whose left side exists (a directory for oci, a
// file for the archives), so paths may hold ':' and names may hold ':'
// and '/'. The path must exist. Relative paths are read against dir ("":
// the process's). Other references are Store when they start with
// LocalRepo + "/", else Registry; Parse does not check their syntax.
func Parse(ref, dir string) (Ref, error) {
	for _, k := range []Kind{OCIArchive, DockerArchive, OCI} {
		if rest, ok := strings.CutPrefix(ref, string(k)+":"); ok {
			p, nm, err := splitPath(rest, dir, k == OCI)
			if err != nil {
				return Ref{}, err
			}
			return Ref{Kind: k, Path: p, Name: nm}, nil
		}
	}
	if strings.HasPrefix(ref, LocalRepo+"/") {
		return Ref{Kind: Store, Name: ref}, nil
	}
	return Ref{Kind: Registry, Name: ref}, nil
}

// splitPath splits PATH[:NAME], PATH an existing directory (isDir) or file.
func splitPath(s, dir string, isDir bool) (p, nm string, err error) {
	if s == "" {
		return "", "", errors.New("no path given")
	}
	join := func(p string) string {
		if dir == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	ok := func(p string) bool {
		st, err := os.Stat(join(p))
		return err == nil && st.IsDir() == isDir
	}
	if ok(s) {
		return join(s), "", nil
	}
	for i := 1; i < len(s); i++ {
		if s[i] == ':' && ok(s[:i]) {
			if i == len(s)-1 {
				return "", "", fmt.Errorf("%s: empty name after ':'", s[:i])
			}
			return join(s[:i]), s[i+1:], nil
		}
	}
	// Nothing fits: name the path most likely meant, the whole rest when
	// it exists (as the wrong kind), else the part before the first ':'.
	p = s
	if _, err := os.Stat(join(s)); err != nil {
		if i := strings.Index(s, ":"); i > 0 {
			p = s[:i]
		}
	}
	if st, err := os.Stat(join(p)); err == nil {
		if isDir && !st.IsDir() {
			return "", "", fmt.Errorf("%s is not a directory", p)
		}
		if !isDir && st.IsDir() {
			return "", "", fmt.Errorf("%s is a directory, not a file", p)
		}
	}
	what := "file"
	if isDir {
		what = "directory"
	}
	return "", "", fmt.Errorf("%s: no such %s", p, what)
}
