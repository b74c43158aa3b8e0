package layer

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
)

// Kind is the type of a tar entry.
type Kind int

const (
	// File is a regular file, read from Source or taken from Data.
	File Kind = iota
	// Dir is a directory.
	Dir
	// Symlink is a symbolic link to Linkname.
	Symlink
)

// Entry is one file, directory or link in a layer.
type Entry struct {
	// Path is the absolute path inside the image, e.g. "/ko-app/server".
	Path string
	Kind Kind
	// Mode holds permission bits and setuid/setgid/sticky (fs.ModeSetuid, …).
	Mode     fs.FileMode
	UID, GID int
	// Source is a file on disk streamed into the layer; when empty, Data is used.
	Source   string
	Data     []byte
	Linkname string
	// PAXRecords carries extended attributes, e.g. "SCHILY.xattr.security.capability".
	PAXRecords map[string]string
}

// Algorithm names a layer compression.
type Algorithm string

const (
	Gzip Algorithm = "gzip"
	Zstd Algorithm = "zstd"
	// None stores the tar as it is: the layer's digest is its diffID.
	None Algorithm = "none"
	// Auto is None for a destination on this machine and Gzip for any
	// other; Resolve picks one before a layer is built.
	Auto Algorithm = "auto"
)

// Compression selects the algorithm and level; Level 0 means the algorithm's default.
type Compression struct {
	Algorithm Algorithm
	Level     int
}

// ParseAlgorithm validates a user-supplied compression name.
func ParseAlgorithm(s string) (Algorithm, error) {
	switch Algorithm(s) {
	case "", Gzip:
		return Gzip, nil
	case Zstd, None, Auto:
		return Algorithm(s), nil
	}
	return "", fmt.Errorf("unknown compression %q: use gzip, zstd, none or auto", s)
}

// Resolve turns Auto into what a destination gets: None when nearby (the
// destination is on this machine, where compressing costs more time than
// the bytes it saves), else Gzip at c's level. Other algorithms are kept.
// The image's digest depends on the pick, so on the destination.
func (c Compression) Resolve(nearby bool) Compression {
	if c.Algorithm != Auto {
		return c
	}
	if nearby {
		return Compression{Algorithm: None}
	}
	return Compression{Algorithm: Gzip, Level: c.Level}
}

// MediaType is the OCI layer media type for the compression.
func (c Compression) MediaType() types.MediaType {
	switch c.Algorithm {
	case Zstd:
		return types.OCILayerZStd
	case None:
		return types.OCIUncompressedLayer
	}
	return types.OCILayer
}

// Options control how a layer is written.
type Options struct {
	Compression Compression
	// ModTime is every entry's mtime (SOURCE_DATE_EPOCH, or the Unix epoch).
	ModTime time.Time
	// Dir is where the compressed layer file is kept; it must exist.
	Dir string
}

// Build writes entries, sorted by path and with missing parent directories
// added (0755, root), as one tar file under opts.Dir, compressed unless the
// algorithm is None (Auto must be resolved first). The tar, its diffID and
// the compressed digest are computed in a single pass (one hash when
// uncompressed); file sources are streamed, never held whole in memory.
func Build(ctx context.Context, entries []Entry, opts Options) (v1.Layer, error) {
	sorted, err := normalize(entries)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(opts.Dir, "layer-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("creating layer file: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(f.Name())
		}
	}()

	compHash := sha256.New()
	counter := &countWriter{}
	fileBuf := bufio.NewWriterSize(f, 1<<20)
	compOut := io.MultiWriter(fileBuf, compHash, counter)
	comp, err := newCompressor(compOut, opts.Compression)
	if err != nil {
		return nil, err
	}
	compClosed := false
	defer func() {
		if !compClosed {
			comp.Close() // stops the compressor's goroutines; the output is discarded
		}
	}()
	mtime := modTime(opts.ModTime)
	diffHash := compHash // uncompressed, the tar is hashed once: digest = diffID
	tarOut := io.Writer(comp)
	if opts.Compression.Algorithm != None {
		diffHash = sha256.New()
		tarOut = io.MultiWriter(comp, diffHash)
	}
	tw := tar.NewWriter(tarOut)
	for _, e := range sorted {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := writeEntry(ctx, tw, e, mtime); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("finishing tar: %w", err)
	}
	compClosed = true
	if err := comp.Close(); err != nil {
		return nil, fmt.Errorf("finishing %s stream: %w", opts.Compression.Algorithm, err)
	}
	if err := fileBuf.Flush(); err != nil {
		return nil, fmt.Errorf("writing layer file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("writing layer file: %w", err)
	}
	l := &fileLayer{
		path:      f.Name(),
		digest:    sum(compHash),
		diffID:    sum(diffHash),
		size:      counter.n,
		mediaType: opts.Compression.MediaType(),
		algorithm: opts.Compression.Algorithm,
	}
	ok = true
	return l, nil
}

// modTime is the mtime written for every entry: whole seconds, so that
// headers with and without PAX records agree, and the Unix epoch for the zero
// time, which a plain tar header cannot hold.
func modTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Unix(0, 0).UTC()
	}
	return t.Truncate(time.Second).UTC()
}

func sum(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.Sum(nil))}
}

func normalize(entries []Entry) ([]Entry, error) {
	byPath := make(map[string]Entry, len(entries))
	for _, e := range entries {
		if !path.IsAbs(e.Path) {
			return nil, fmt.Errorf("layer entry %q: path must be absolute", e.Path)
		}
		p := path.Clean(e.Path)
		if p == "/" {
			continue
		}
		e.Path = p
		if prev, dup := byPath[p]; dup && !sameDir(prev, e) {
			return nil, fmt.Errorf("layer entry %q: given twice", p)
		}
		byPath[p] = e
	}
	for p := range byPath {
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			if existing, ok := byPath[d]; ok {
				if existing.Kind != Dir {
					return nil, fmt.Errorf("layer entry %q: parent %q is not a directory", p, d)
				}
				continue
			}
			byPath[d] = Entry{Path: d, Kind: Dir, Mode: 0o755}
		}
	}
	out := make([]Entry, 0, len(byPath))
	for _, e := range byPath {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// sameDir reports whether a and b are the same directory, so that giving it
// twice is harmless. Two directories that differ in mode, owner or records
// are an error: keeping either would make the layer depend on input order.
func sameDir(a, b Entry) bool {
	return a.Kind == Dir && b.Kind == Dir && tarMode(a.Mode) == tarMode(b.Mode) &&
		a.UID == b.UID && a.GID == b.GID && maps.Equal(a.PAXRecords, b.PAXRecords)
}

func tarMode(m fs.FileMode) int64 {
	mode := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}

func writeEntry(ctx context.Context, tw *tar.Writer, e Entry, mtime time.Time) error {
	hdr := &tar.Header{
		Name:       strings.TrimPrefix(e.Path, "/"),
		Mode:       tarMode(e.Mode),
		Uid:        e.UID,
		Gid:        e.GID,
		ModTime:    mtime,
		PAXRecords: e.PAXRecords,
	}
	if len(e.PAXRecords) > 0 {
		hdr.Format = tar.FormatPAX
	}
	switch e.Kind {
	case Dir:
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
		return tw.WriteHeader(hdr)
	case Symlink:
		hdr.Typeflag = tar.TypeSymlink
		hdr.Linkname = e.Linkname
		return tw.WriteHeader(hdr)
	case File:
		hdr.Typeflag = tar.TypeReg
		if e.Source == "" {
			hdr.Size = int64(len(e.Data))
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			_, err := tw.Write(e.Data)
			return err
		}
		src, err := os.Open(e.Source)
		if err != nil {
			return fmt.Errorf("layer entry %s: %w", e.Path, err)
		}
		defer src.Close()
		st, err := src.Stat()
		if err != nil {
			return fmt.Errorf("layer entry %s: %w", e.Path, err)
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("layer entry %s: source %s is not a regular file", e.Path, e.Source)
		}
		hdr.Size = st.Size()
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		r := &ctxReader{ctx: ctx, r: src}
		n, err := io.CopyN(tw, r, hdr.Size)
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("layer entry %s: %s changed size while being read (%d of %d bytes)", e.Path, e.Source, n, hdr.Size)
		}
		if err != nil {
			return fmt.Errorf("layer entry %s: reading %s: %w", e.Path, e.Source, err)
		}
		// A file that grew would otherwise be cut silently at its old size.
		if m, _ := r.Read(make([]byte, 1)); m > 0 {
			return fmt.Errorf("layer entry %s: %s changed size while being read (more than %d bytes)", e.Path, e.Source, hdr.Size)
		}
		return nil
	}
	return fmt.Errorf("layer entry %s: unknown kind %d", e.Path, e.Kind)
}

func newCompressor(w io.Writer, c Compression) (io.WriteCloser, error) {
	switch c.Algorithm {
	case "", Gzip:
		zw, err := pgzip.NewWriterLevel(w, c.EffectiveLevel())
		if err != nil {
			return nil, fmt.Errorf("gzip level %d: %w", c.Level, err)
		}
		// Fixed block size keeps the output independent of how many cores run it.
		if err := zw.SetConcurrency(1<<20, 4); err != nil {
			return nil, err
		}
		return zw, nil
	case Zstd:
		return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(c.EffectiveLevel())), zstd.WithEncoderConcurrency(1))
	case None:
		return nopCloser{w}, nil
	case Auto:
		return nil, errors.New("internal error: compression auto was not resolved for a destination (Compression.Resolve)")
	}
	return nil, fmt.Errorf("unknown compression %q: use gzip, zstd, none or auto", c.Algorithm)
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// ctxReader stops a long file copy when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// fileLayer is a v1.Layer whose compressed bytes live in a file on disk.
type fileLayer struct {
	path      string
	digest    v1.Hash
	diffID    v1.Hash
	size      int64
	mediaType types.MediaType
	algorithm Algorithm
}

var _ v1.Layer = (*fileLayer)(nil)

func (l *fileLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *fileLayer) Size() (int64, error)                { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error) { return l.mediaType, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)  { return os.Open(l.path) }
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, err
	}
	switch l.algorithm {
	case None:
		return f, nil
	case Zstd:
		zr, err := zstd.NewReader(f)
		if err != nil {
			f.Close()
			return nil, err
		}
		return &readCloser{Reader: zr, close: func() error { zr.Close(); return f.Close() }}, nil
	default:
		zr, err := pgzip.NewReader(f)
		if err != nil {
			f.Close()
			return nil, err
		}
		return &readCloser{Reader: zr, close: func() error { return errors.Join(zr.Close(), f.Close()) }}, nil
	}
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r *readCloser) Close() error { return r.close() }

// EffectiveLevel is the level used: Level, or the algorithm's default for 0
// (gzip 6: about 10 % smaller than level 1, a cost paid once per binary
// since layers are cached; zstd 3; none 0).
func (c Compression) EffectiveLevel() int {
	if c.Level != 0 {
		return c.Level
	}
	switch c.Algorithm {
	case Zstd:
		return 3
	case None:
		return 0
	}
	return 6
}

// Validate checks the level against the algorithm's range.
func (c Compression) Validate() error {
	switch c.Algorithm {
	case "", Gzip:
		if c.Level < 0 || c.Level > 9 {
			return fmt.Errorf("gzip compression level %d is out of range: use 1 to 9", c.Level)
		}
	case Zstd:
		if c.Level < 0 || c.Level > 22 {
			return fmt.Errorf("zstd compression level %d is out of range: use 1 to 22", c.Level)
		}
	case None:
		if c.Level != 0 {
			return fmt.Errorf("compression none takes no level (got %d): drop the level, or pick gzip or zstd", c.Level)
		}
	case Auto:
		if c.Level < 0 || c.Level > 9 {
			return fmt.Errorf("compression auto's level is gzip's (for destinations elsewhere): %d is out of range: use 1 to 9", c.Level)
		}
	default:
		return fmt.Errorf("unknown compression %q: use gzip, zstd, none or auto", c.Algorithm)
	}
	return nil
}
