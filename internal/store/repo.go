package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// A registry serves the layout as repositories. Tags stay in index.json as
// "NAME:TAG" ref names, so the CLI and the registry share them, and what a
// repository holds beyond its tags is recorded beside the layout:
//
//	DIR/repositories/NAME/
//	├── _blobs/<hex>                     a hard link: blob <hex> belongs to NAME
//	├── _manifests/<hex>                 the media type of manifest <hex>
//	└── _referrers/<subject-hex>/<hex>   the descriptor JSON of a referrer
//	DIR/uploads/<id>                     an upload in progress
//
// Path components of a repository name start with [a-z0-9], so the
// underscore directories can never collide with a nested repository.
// Content written by the CLI (index.json only) is found by walking the
// repository's tags when a link is missing. A manifest is what was pushed
// as one (its _manifests record) or what that walk reaches from index.json
// through manifest media types alone (an image manifest, an index and
// their children): a layer or a config is never served as a manifest, and
// every manifest is read through MaxManifestBytes.

// Errors a registry maps onto the distribution spec's codes.
var (
	ErrNameInvalid         = errors.New("invalid repository name")
	ErrNameUnknown         = errors.New("repository not known")
	ErrTagInvalid          = errors.New("invalid tag")
	ErrDigestInvalid       = errors.New("invalid digest")
	ErrBlobUnknown         = errors.New("blob unknown to repository")
	ErrManifestUnknown     = errors.New("manifest unknown to repository")
	ErrManifestInvalid     = errors.New("manifest invalid")
	ErrManifestBlobUnknown = errors.New("manifest references a blob unknown to the repository")
	ErrManifestTooLarge    = errors.New("manifest too large")
	ErrUploadUnknown       = errors.New("blob upload unknown")
	ErrUploadInvalid       = errors.New("blob upload invalid")
)

// The distribution spec's grammar for repository names and tags, compiled
// on first use: every kiln command links the store, few validate names.
var (
	nameRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
	})
	tagRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`) })
)

// maxNameLen bounds a repository name (with the host part, 255 in all).
const maxNameLen = 255

// ValidName reports whether name is a repository name of the distribution
// spec; only such names become paths under the layout.
func ValidName(name string) error {
	if len(name) > maxNameLen || !nameRE().MatchString(name) {
		return fmt.Errorf("%w: %q (lower-case letters, digits and separators . _ __ - /)", ErrNameInvalid, name)
	}
	return nil
}

// ValidTag reports whether tag is a tag of the distribution spec.
func ValidTag(tag string) error {
	if !tagRE().MatchString(tag) {
		return fmt.Errorf("%w: %q (up to 128 of [A-Za-z0-9._-], not starting with . or -)", ErrTagInvalid, tag)
	}
	return nil
}

func (l *Layout) repoDir(name string) string {
	return filepath.Join(l.dir, "repositories", filepath.FromSlash(name))
}

func (l *Layout) blobLink(name string, h v1.Hash) string {
	return filepath.Join(l.repoDir(name), "_blobs", h.Hex)
}

func (l *Layout) manifestLink(name string, h v1.Hash) string {
	return filepath.Join(l.repoDir(name), "_manifests", h.Hex)
}

// linkBlob records that repository name holds blob h with a hard link to
// the blob: made in one step, so it is either there or not, and with no new
// inode, which costs a file system far more than a directory entry.
func (l *Layout) linkBlob(name string, h v1.Hash) error {
	path := l.blobLink(name, h)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.Link(l.blobPath(h), path); err != nil && !os.IsExist(err) {
		return fmt.Errorf("linking blob %s into %s: %w", h, name, err)
	}
	return nil
}

// linkBlobDurably is linkBlob made durable before it returns: an
// acknowledged push or mount must survive a crash of the machine, and gc
// (see protections). Writers waiting at once share the directory's fsync.
// The caller holds the sweep lock shared.
func (l *Layout) linkBlobDurably(name string, h v1.Hash) error {
	if err := l.linkBlob(name, h); err != nil {
		return err
	}
	l.protected.add(h)
	return l.syncer(filepath.Dir(l.blobLink(name, h))).Sync()
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// splitRefName splits "NAME:TAG" at the colon after the last slash.
func splitRefName(ref string) (name, tag string, ok bool) {
	i := strings.LastIndex(ref, ":")
	if i < 0 || i < strings.LastIndex(ref, "/") {
		return "", "", false
	}
	return ref[:i], ref[i+1:], true
}

// taggedIn returns the descriptors index.json names NAME:<tag>, by tag.
func (l *Layout) taggedIn(name string) (map[string]v1.Descriptor, error) {
	im, err := l.sharedIndex()
	if err != nil {
		return nil, err
	}
	tags := map[string]v1.Descriptor{}
	for _, d := range im.Manifests {
		if n, t, ok := splitRefName(d.Annotations[RefNameAnnotation]); ok && n == name {
			tags[t] = d
		}
	}
	return tags, nil
}

// Tags lists the tags of repository name, sorted. A repository that has
// neither tags nor manifests is ErrNameUnknown.
func (l *Layout) Tags(name string) ([]string, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	tagged, err := l.taggedIn(name)
	if err != nil {
		return nil, err
	}
	if len(tagged) == 0 && !exists(filepath.Join(l.repoDir(name), "_manifests")) {
		return nil, fmt.Errorf("%s: %w", name, ErrNameUnknown)
	}
	tags := make([]string, 0, len(tagged))
	for t := range tagged {
		tags = append(tags, t)
	}
	slices.Sort(tags)
	return tags, nil
}

// Repositories lists every repository with a tag or a stored manifest or
// blob, sorted.
func (l *Layout) Repositories() ([]string, error) {
	seen := map[string]bool{}
	im, err := l.readIndex()
	if err != nil {
		return nil, err
	}
	for _, d := range im.Manifests {
		if n, _, ok := splitRefName(d.Annotations[RefNameAnnotation]); ok && ValidName(n) == nil {
			seen[n] = true
		}
	}
	root := filepath.Join(l.dir, "repositories")
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if !d.IsDir() || !strings.HasPrefix(d.Name(), "_") {
			return nil
		}
		if rel, err := filepath.Rel(root, filepath.Dir(path)); err == nil {
			if n := filepath.ToSlash(rel); ValidName(n) == nil {
				seen[n] = true
			}
		}
		return filepath.SkipDir
	})
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}
