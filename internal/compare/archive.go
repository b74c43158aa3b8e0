package compare

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kilnbuild/kiln/internal/checked"
)

// archive is a tar file (an oci-archive or a docker save tarball) read in
// place: one pass over its headers records where each file's bytes are,
// and a file is then read as a section of the tar. Nothing is unpacked, so
// a plain tar costs no temporary disk. A gzip-compressed tar cannot be
// read by section, so it is decompressed once into an unlinked temporary
// file, under the temp-disk and bytes budgets; the blobs inside are
// compressed already, so that copy is about as large as the archive's
// content.
//
// The index refuses what an image archive never holds and a hostile one
// might: names that are absolute or climb out with "..", links whose
// target leaves the archive, devices and fifos, sparse files (which read
// as more bytes than they store), and a name given twice.
type archive struct {
	f       *os.File
	files   map[string]section
	links   map[string]string // name → target name, both cleaned
	m       *meter
	tempLen int64 // temporary disk held, released by Close
}

type section struct{ off, size int64 }

// maxLinkHops bounds chains of links inside an archive.
const maxLinkHops = 8

// openArchive indexes the tar file, decompressing it first when it is
// gzip-compressed.
func openArchive(file, tempDir string, m *meter) (*archive, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	a := &archive{f: f, files: map[string]section{}, links: map[string]string{}, m: m}
	var magic [2]byte
	if n, _ := io.ReadFull(f, magic[:]); n == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		if a.f, err = a.gunzip(f, tempDir); err != nil {
			f.Close()
			a.Close()
			return nil, err
		}
		f.Close()
	}
	if err := a.index(); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// gunzip decompresses f into an unlinked temporary file.
func (a *archive) gunzip(f *os.File, tempDir string) (*os.File, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("not a gzip stream: %v", err)
	}
	defer zr.Close()
	tmp, err := os.CreateTemp(tempDir, "kiln-compare-archive-*")
	if err != nil {
		return nil, err
	}
	os.Remove(tmp.Name()) // gone when closed, however compare ends
	w := &tempWriter{w: tmp, a: a}
	if _, err := io.Copy(w, &meteredReader{r: zr, m: a.m}); err != nil {
		tmp.Close()
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, errors.New("the gzip stream is truncated: the archive is incomplete")
		}
		var le *LimitError
		if errors.As(err, &le) {
			return nil, fmt.Errorf("decompressing the archive: %w", err)
		}
		return nil, fmt.Errorf("decompressing the archive: %v", err)
	}
	return tmp, nil
}

// tempWriter charges what it writes to the temp-disk budget.
type tempWriter struct {
	w io.Writer
	a *archive
}

func (t *tempWriter) Write(p []byte) (int, error) {
	if err := t.a.m.reserveTemp(int64(len(p))); err != nil {
		return 0, err
	}
	t.a.tempLen += int64(len(p))
	return t.w.Write(p)
}

// Close releases the file and the temporary disk it held.
func (a *archive) Close() error {
	a.m.releaseTemp(a.tempLen)
	a.tempLen = 0
	if a.f == nil {
		return nil
	}
	err := a.f.Close()
	a.f = nil
	return err
}

// posReader tracks the offset of a tar stream; tar.Reader seeks past file
// contents, so after Next the offset is where the entry's bytes start.
type posReader struct {
	f   io.ReadSeeker
	pos int64
}

func (p *posReader) Read(b []byte) (int, error) {
	n, err := p.f.Read(b)
	p.pos += int64(n)
	return n, err
}

func (p *posReader) Seek(off int64, whence int) (int64, error) {
	n, err := p.f.Seek(off, whence)
	if err == nil {
		p.pos = n
	}
	return n, err
}

func (a *archive) index() error {
	if _, err := a.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	st, err := a.f.Stat()
	if err != nil {
		return err
	}
	pr := &posReader{f: a.f}
	tr := tar.NewReader(pr)
	seen := map[string]bool{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return errors.New("the archive is truncated")
		}
		if err != nil {
			return fmt.Errorf("%w: %v", errNotTar, err)
		}
		if err := a.m.entry(0); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		rel, err := archiveName(hdr.Name)
		if err != nil {
			return err
		}
		if rel == "." {
			continue
		}
		if seen[rel] && hdr.Typeflag != tar.TypeDir {
			return fmt.Errorf("entry %q appears twice in the archive: which one is meant is ambiguous", hdr.Name)
		}
		seen[rel] = true
		switch hdr.Typeflag {
		case tar.TypeDir:
		case tar.TypeReg, tar.TypeRegA:
			if isSparse(hdr) {
				return fmt.Errorf("entry %q is a sparse file declaring %d bytes: an image archive holds none", hdr.Name, hdr.Size)
			}
			if pr.pos+hdr.Size > st.Size() {
				return fmt.Errorf("the archive is truncated: entry %q ends past its end", hdr.Name)
			}
			a.files[rel] = section{off: pr.pos, size: hdr.Size}
		case tar.TypeSymlink, tar.TypeLink:
			target := hdr.Linkname
			if hdr.Typeflag == tar.TypeSymlink && !path.IsAbs(target) {
				target = path.Join(path.Dir(rel), target)
			}
			t, err := archiveName(target)
			if err != nil || t == "." {
				return fmt.Errorf("entry %q links out of the archive (to %q)", hdr.Name, hdr.Linkname)
			}
			a.links[rel] = t
		case tar.TypeGNUSparse:
			return fmt.Errorf("entry %q is a sparse file declaring %d bytes: an image archive holds none", hdr.Name, hdr.Size)
		default:
			return fmt.Errorf("entry %q is a device, fifo or other special file (type %q): an image archive holds only files", hdr.Name, hdr.Typeflag)
		}
	}
}

// archiveName cleans a name inside an archive; absolute names and names
// that climb out are refused.
func archiveName(name string) (string, error) {
	if path.IsAbs(name) || strings.HasPrefix(name, "\\") {
		return "", fmt.Errorf("entry %q has an absolute name: it would leave the archive", name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", fmt.Errorf("entry %q climbs out of the archive with ..", name)
		}
	}
	return path.Clean(name), nil
}

// isSparse reports a PAX-format sparse file, which Go's tar reader
// expands to its declared size.
func isSparse(hdr *tar.Header) bool {
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// errNotTar says the file is no tar archive at all.
var errNotTar = errors.New("not a tar archive")

// errNotInArchive is returned for a name the archive does not hold.
var errNotInArchive = errors.New("not in the archive")

// open returns the file name (following links inside the archive) as a
// section of the tar, and its size.
func (a *archive) open(name string) (io.ReadCloser, int64, error) {
	n := path.Clean(strings.TrimPrefix(name, "./"))
	for hops := 0; ; hops++ {
		t, ok := a.links[n]
		if !ok {
			break
		}
		if hops == maxLinkHops {
			return nil, 0, fmt.Errorf("%s: more than %d links in a row", name, maxLinkHops)
		}
		n = t
	}
	s, ok := a.files[n]
	if !ok {
		return nil, 0, fmt.Errorf("%s: %w", name, errNotInArchive)
	}
	return io.NopCloser(io.NewSectionReader(a.f, s.off, s.size)), s.size, nil
}

// has reports whether the archive holds name.
func (a *archive) has(name string) bool {
	rc, _, err := a.open(name)
	if err == nil {
		rc.Close()
	}
	return err == nil
}

// readJSON reads a file that is not named by a digest (index.json,
// manifest.json), at most the JSON budget.
func (a *archive) readJSON(name string) ([]byte, error) {
	rc, size, err := a.open(name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if size > a.m.lim.JSON {
		return nil, jsonTooLarge(name, size, a.m.lim.JSON)
	}
	return io.ReadAll(rc)
}

func jsonTooLarge(name string, size, limit int64) error {
	return fmt.Errorf("%s is %d bytes: %w of %s for a JSON document (--max-json)", name, size, checked.ErrTooLarge, formatBytes(limit))
}

// Blob makes an oci-archive's blobs/ALG/HEX files a checked.Blobs.
func (a *archive) Blob(h v1.Hash) (io.ReadCloser, error) {
	rc, _, err := a.open(path.Join("blobs", h.Algorithm, h.Hex))
	return rc, err
}

var _ checked.Blobs = (*archive)(nil)
