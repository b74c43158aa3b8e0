package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// blockSize is tar's unit: every header and every file's data is padded
// to a multiple of it, and the archive ends with two zero blocks.
const blockSize = 512

var zeroBlocks [2 * blockSize]byte

// tarPlan is a layer's tar laid out as parts: the bytes kiln makes (each
// entry's header, a Data entry's bytes, padding, the end of the archive) and
// runs of source files, which are read only when the tar is. Its bytes are
// those tar.Writer writes for the same entries.
type tarPlan struct {
	parts []part
	size  int64 // the tar's length
}

// part is a piece of the tar: data, or size bytes of the file src (the
// entry at path).
type part struct {
	data       []byte
	src, entry string
	size       int64
}

// planTar lays out the tar of sorted entries with mtime. Each source's size
// is taken now, as stat reports it; the tar's reader fails if a source no
// longer has that size when it is read.
func planTar(sorted []Entry, mtime time.Time) (*tarPlan, error) {
	p := &tarPlan{}
	var buf bytes.Buffer
	for _, e := range sorted {
		hdr, err := header(e, mtime)
		if err != nil {
			return nil, err
		}
		if e.Kind == File && e.Source != "" {
			st, err := os.Stat(e.Source)
			if err != nil {
				return nil, fmt.Errorf("layer entry %s: %w", e.Path, err)
			}
			if !st.Mode().IsRegular() {
				return nil, fmt.Errorf("layer entry %s: source %s is not a regular file", e.Path, e.Source)
			}
			hdr.Size = st.Size()
		}
		// A header alone is written at once: the writer is dropped before
		// it wants the entry's data.
		buf.Reset()
		if err := tar.NewWriter(&buf).WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", e.Path, err)
		}
		p.add(part{data: bytes.Clone(buf.Bytes())})
		switch {
		case e.Kind != File:
			continue
		case e.Source != "":
			// An empty source too: it is opened, to find that it grew.
			p.add(part{src: e.Source, entry: e.Path, size: hdr.Size})
		default:
			p.add(part{data: e.Data})
		}
		if pad := -hdr.Size & (blockSize - 1); pad > 0 {
			p.add(part{data: zeroBlocks[:pad]})
		}
	}
	p.add(part{data: zeroBlocks[:]})
	return p, nil
}

func (p *tarPlan) add(pt part) {
	if pt.src == "" {
		pt.size = int64(len(pt.data))
	}
	p.parts = append(p.parts, pt)
	p.size += pt.size
}

// sources are the files the tar reads, for errors.
func (p *tarPlan) sources() []string {
	var s []string
	for _, pt := range p.parts {
		if pt.src != "" {
			s = append(s, pt.src)
		}
	}
	return s
}

// open returns a reader of the tar's bytes. It opens each source when its
// part is reached and fails when a source's size differs from the plan's.
func (p *tarPlan) open() *tarReader { return &tarReader{parts: p.parts} }

// tarReader reads a tarPlan's parts in order.
type tarReader struct {
	parts []part
	data  []byte   // the rest of the current data part
	f     *os.File // the current source, nil between sources
	pt    part     // the current source's part
	left  int64    // bytes of f still to read
	err   error    // sticky: the reader's end
}

func (r *tarReader) Read(b []byte) (int, error) {
	for r.err == nil {
		switch {
		case len(r.data) > 0:
			n := copy(b, r.data)
			r.data = r.data[n:]
			return n, nil
		case r.f != nil && r.left > 0:
			if int64(len(b)) > r.left {
				b = b[:r.left]
			}
			n, err := r.f.Read(b)
			r.left -= int64(n)
			switch {
			case errors.Is(err, io.EOF):
				if n > 0 {
					return n, nil
				}
				r.fail(r.changedSize(fmt.Sprintf("%d of %d bytes", r.pt.size-r.left, r.pt.size)))
			case err != nil:
				r.fail(fmt.Errorf("layer entry %s: reading %s: %w", r.pt.entry, r.pt.src, err))
			}
			if n > 0 {
				return n, nil
			}
		case r.f != nil:
			// A file that grew would otherwise be cut silently at its old size.
			m, _ := r.f.Read(make([]byte, 1))
			r.f.Close()
			r.f = nil
			if m > 0 {
				r.fail(r.changedSize(fmt.Sprintf("more than %d bytes", r.pt.size)))
			}
		case len(r.parts) == 0:
			r.err = io.EOF
		default:
			pt := r.parts[0]
			r.parts = r.parts[1:]
			if pt.src == "" {
				r.data = pt.data
				continue
			}
			r.fail(r.openSource(pt))
		}
	}
	return 0, r.err
}

// openSource opens pt's file, which must still be a regular file of the
// planned size.
func (r *tarReader) openSource(pt part) error {
	r.pt, r.left = pt, pt.size
	f, err := os.Open(pt.src)
	if err != nil {
		return fmt.Errorf("layer entry %s: %w", pt.entry, err)
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("source %s is not a regular file", pt.src)
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("layer entry %s: %w", pt.entry, err)
	}
	r.f = f
	if st.Size() != pt.size {
		return r.changedSize(fmt.Sprintf("%d bytes, not %d", st.Size(), pt.size))
	}
	return nil
}

func (r *tarReader) changedSize(detail string) error {
	return &changedError{fmt.Sprintf("layer entry %s: %s changed size while being read (%s)", r.pt.entry, r.pt.src, detail)}
}

// fail ends the reader with err (nil: no change).
func (r *tarReader) fail(err error) {
	if err != nil {
		r.err = err
		r.close()
	}
}

func (r *tarReader) close() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
}

// Close releases the open source; later reads fail.
func (r *tarReader) Close() error {
	r.close()
	if r.err == nil || r.err == io.EOF {
		r.err = os.ErrClosed
	}
	return nil
}

// ErrSourceChanged is what the error of a layer whose source file changed
// matches (errors.Is): while it was built, or, for an uncompressed layer,
// between its build and a read of it.
var ErrSourceChanged = errors.New("a layer's source file changed")

type changedError struct{ msg string }

func (e *changedError) Error() string        { return e.msg }
func (e *changedError) Is(target error) bool { return target == ErrSourceChanged }

// copyCtx copies src to dst, stopping when ctx is done.
func copyCtx(ctx context.Context, dst io.Writer, src io.Reader) (int64, error) {
	buf := make([]byte, 256<<10)
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return total, werr
			}
			total += int64(n)
		}
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}
