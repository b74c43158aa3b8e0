package store

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	specs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kilnbuild/kiln/internal/checked"
)

// Layout is the OCI image layout that kiln build writes and podman,
// skopeo and ko read (oci:DIR):
//
//	DIR/
//	├── oci-layout              {"imageLayoutVersion": "1.0.0"}
//	├── index.json              one descriptor per tag, its ref name NAME:TAG
//	├── .lock                   serialises index.json updates between processes
//	│                           (flock), and gc with writers (sweepLock)
//	└── blobs/<alg>/<hex>       manifests, configs and layers (sha256, sha512)
//
// Every blob is staged in blobs/<alg>/.tmp-*, checked against its digest,
// synced and renamed into place; index.json is replaced the same way, under
// the lock, so readers never see a partial file and writers lose no tags.
// The registry's storage beside it (repositories, uploads, the journal,
// gc) is Repositories.
type Layout struct {
	dir     string
	syncers sync.Map // directory → *dirSyncer

	// noSync skips every fsync: see DisableSyncUnsafe.
	noSync bool

	sweep sweepLock // gc against the writes that make blobs needed

	indexMu  sync.Mutex
	index    *v1.IndexManifest // the last index.json parsed, never edited
	indexRaw []byte            // and its bytes

	reposOnce sync.Once
	repos     *Repositories // the registry's storage over this layout
}

// Open creates the layout at dir if needed.
func Open(dir string) (*Layout, error) {
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return nil, fmt.Errorf("creating image layout %s: %w", dir, err)
	}
	l := &Layout{dir: dir}
	l.sweep.path = filepath.Join(dir, ".lock")
	marker := filepath.Join(dir, "oci-layout")
	if _, err := os.Stat(marker); os.IsNotExist(err) {
		if err := l.writeFileAtomic(marker, []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// Dir is the layout's directory.
func (l *Layout) Dir() string { return l.dir }

// Artifact is an image or an index.
type Artifact = checked.Manifest

// Put writes every blob of a (an image or an index and its children) and
// then points each of refNames at it in index.json.
func (l *Layout) Put(ctx context.Context, a Artifact, refNames []string) (v1.Descriptor, error) {
	// gc waits until the blobs are tagged, or they would be unreferenced.
	unlock, err := l.sweep.sharedAcrossProcesses()
	if err != nil {
		return v1.Descriptor{}, err
	}
	defer unlock()
	if err := l.writeArtifact(ctx, a); err != nil {
		return v1.Descriptor{}, err
	}
	desc, err := partial.Descriptor(a)
	if err != nil {
		return v1.Descriptor{}, err
	}
	if img, ok := a.(v1.Image); ok {
		if cf, err := img.ConfigFile(); err == nil && cf.Architecture != "" {
			desc.Platform = cf.Platform()
		}
	}
	return *desc, l.tag(*desc, refNames)
}

func (l *Layout) writeArtifact(ctx context.Context, a Artifact) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	switch v := a.(type) {
	case v1.ImageIndex:
		children, err := checked.Children(v)
		if err != nil {
			return err
		}
		for _, child := range children {
			if err := l.writeArtifact(ctx, child); err != nil {
				return err
			}
		}
	case v1.Image:
		layers, err := v.Layers()
		if err != nil {
			return err
		}
		for _, layer := range layers {
			if err := ctx.Err(); err != nil {
				return err
			}
			h, err := layer.Digest()
			if err != nil {
				return err
			}
			if err := l.writeBlob(h, layer.Compressed); err != nil {
				return err
			}
		}
		cfgName, err := v.ConfigName()
		if err != nil {
			return err
		}
		raw, err := v.RawConfigFile()
		if err != nil {
			return err
		}
		if err := l.writeBlobBytes(cfgName, raw); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unsupported artifact %T", a)
	}
	h, err := a.Digest()
	if err != nil {
		return err
	}
	raw, err := a.RawManifest()
	if err != nil {
		return err
	}
	return l.writeBlobBytes(h, raw)
}

func (l *Layout) blobPath(h v1.Hash) string {
	return filepath.Join(l.dir, "blobs", h.Algorithm, h.Hex)
}

func (l *Layout) writeBlobBytes(h v1.Hash, b []byte) error {
	return l.writeBlob(h, func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
}

// ErrDigestMismatch means a blob's bytes do not hash to its name.
var ErrDigestMismatch = errors.New("blob content does not match its digest")

func (l *Layout) writeBlob(h v1.Hash, open func() (io.ReadCloser, error)) error {
	return l.writeBlobFile(h, open, true)
}

// writeBlobFile writes blob h from what open yields, checking its digest.
// Unless durable, neither the file nor its directory is synced: for a
// blob that is durable elsewhere (the journal) until a sync of the whole
// file system.
func (l *Layout) writeBlobFile(h v1.Hash, open func() (io.ReadCloser, error), durable bool) error {
	if _, ok := algorithms[h.Algorithm]; !ok {
		return fmt.Errorf("blob %s: only sha256 and sha512 digests are supported", h)
	}
	// The hex part becomes a file name: anything but the algorithm's length
	// of lower-case hex digits could leave blobs/ (or panic below).
	if !validDigest(h) {
		return fmt.Errorf("blob %q: malformed %s digest", h.String(), h.Algorithm)
	}
	final := l.blobPath(h)
	if _, err := os.Stat(final); err == nil {
		return nil // content-addressed: present means complete
	}
	rc, err := open()
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return fmt.Errorf("writing blob %s: %w", h, err)
	}
	// Not renameio: an unsynced blob is linked, never renamed over a
	// synced one (below), and the directory is synced after the rename.
	tmp, err := os.CreateTemp(filepath.Dir(final), ".tmp-"+h.Hex[:12]+"-")
	if err != nil {
		return fmt.Errorf("writing blob %s: %w", h, err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	hasher := algorithms[h.Algorithm]()
	if _, err := io.Copy(io.MultiWriter(tmp, hasher), rc); err != nil {
		tmp.Close()
		return fmt.Errorf("writing blob %s: %w", h, err)
	}
	if got := hex.EncodeToString(hasher.Sum(nil)); got != h.Hex {
		tmp.Close()
		return fmt.Errorf("blob %s: %w (got %s:%s)", h, ErrDigestMismatch, h.Algorithm, got)
	}
	if durable {
		if err := l.syncFile(tmp); err != nil {
			tmp.Close()
			return fmt.Errorf("writing blob %s: %w", h, err)
		}
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing blob %s: %w", h, err)
	}
	// CreateTemp makes 0600 files; blobs are as readable as index.json.
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("writing blob %s: %w", h, err)
	}
	if !durable {
		// Never over a file already there: it may be a synced copy that
		// the journal no longer backs, which an unsynced one must not
		// replace.
		if err := os.Link(tmp.Name(), final); err != nil && !os.IsExist(err) {
			return fmt.Errorf("writing blob %s: %w", h, err)
		}
		return nil // the deferred Remove drops the temporary name
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return fmt.Errorf("writing blob %s: %w", h, err)
	}
	return l.syncer(filepath.Dir(final)).Sync()
}

// touch marks a blob as just used. gc no longer goes by a blob's age (see
// sweepLock); an upload still touches a blob it finds present.
func touch(path string) {
	now := time.Now()
	os.Chtimes(path, now, now)
}

// DisableSyncUnsafe stops the layout from calling fsync. Writes stay
// atomic (a crash of the process loses nothing it acknowledged) but a crash
// of the machine can lose or truncate recent blobs. For caches and
// benchmarks against stores that never sync.
func (l *Layout) DisableSyncUnsafe() { l.noSync = true }

func (l *Layout) syncFile(f *os.File) error {
	if l.noSync {
		return nil
	}
	return f.Sync()
}

func (l *Layout) syncDir(dir string) error {
	if l.noSync {
		return nil
	}
	return fsyncDir(dir)
}

// fsyncDir makes a rename into dir durable.
func fsyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}

// tag points refNames at desc, replacing earlier descriptors with those
// names. With no names the descriptor is added unnamed (once).
func (l *Layout) tag(desc v1.Descriptor, refNames []string) error {
	unlock, err := l.lock()
	if err != nil {
		return err
	}
	defer unlock()
	return l.tagLocked(desc, refNames)
}

// tagLocked is tag for a caller that holds the lock.
func (l *Layout) tagLocked(desc v1.Descriptor, refNames []string) error {
	im, err := l.readIndex()
	if err != nil {
		return err
	}
	drop := map[string]bool{}
	names := refNames[:0:0]
	for _, n := range refNames {
		if !drop[n] {
			names = append(names, n)
		}
		drop[n] = true
	}
	refNames = names
	kept := im.Manifests[:0]
	for _, d := range im.Manifests {
		name := d.Annotations[specs.AnnotationRefName]
		if drop[name] || (len(refNames) == 0 && name == "" && d.Digest == desc.Digest) {
			continue
		}
		kept = append(kept, d)
	}
	im.Manifests = kept
	if len(refNames) == 0 {
		im.Manifests = append(im.Manifests, desc)
	}
	for _, n := range refNames {
		d := desc
		d.Annotations = map[string]string{specs.AnnotationRefName: n}
		im.Manifests = append(im.Manifests, d)
	}
	return l.writeIndexLocked(im)
}

// writeIndexLocked replaces index.json with im, for a caller that holds
// the lock.
func (l *Layout) writeIndexLocked(im *v1.IndexManifest) error {
	raw, err := json.MarshalIndent(im, "", "  ")
	if err != nil {
		return err
	}
	return l.writeFileAtomic(filepath.Join(l.dir, "index.json"), raw)
}

// readIndex is index.json (an empty index when there is none yet), a copy
// the caller may edit.
func (l *Layout) readIndex() (*v1.IndexManifest, error) {
	cached, err := l.sharedIndex()
	if err != nil {
		return nil, err
	}
	// Callers edit what they get: hand out a copy of the descriptor list.
	im := *cached
	im.Manifests = slices.Clone(cached.Manifests)
	return &im, nil
}

// sharedIndex is index.json as last parsed, shared: read it, never edit
// it. Its pointer changes exactly when the file's bytes do.
func (l *Layout) sharedIndex() (*v1.IndexManifest, error) {
	raw, err := os.ReadFile(filepath.Join(l.dir, "index.json"))
	if os.IsNotExist(err) {
		return &v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}, nil
	}
	if err != nil {
		return nil, err
	}
	// Reading is cheap, parsing is not: the last parse holds while the
	// bytes are the same (another process may have written the file).
	l.indexMu.Lock()
	cached, hit := l.index, l.index != nil && bytes.Equal(l.indexRaw, raw)
	l.indexMu.Unlock()
	if !hit {
		if cached, err = v1.ParseIndexManifest(bytes.NewReader(raw)); err != nil {
			return nil, fmt.Errorf("reading %s/index.json: %w", l.dir, err)
		}
		l.indexMu.Lock()
		l.index, l.indexRaw = cached, raw
		l.indexMu.Unlock()
	}
	return cached, nil
}

func (l *Layout) lock() (func(), error) {
	f, err := os.OpenFile(filepath.Join(l.dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", l.dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", l.dir, err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// writeFileAtomic replaces path with data through a synced temporary
// sibling, then syncs the directory. It is not renameio's WriteFile, which
// fsyncs always (DisableSyncUnsafe must turn every fsync off) and never
// syncs the directory (the rename would not be durable).
func (l *Layout) writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := l.syncFile(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return l.syncDir(filepath.Dir(path))
}
