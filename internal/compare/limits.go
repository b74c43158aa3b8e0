package compare

import (
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/kilnbuild/kiln/internal/checked"
)

// Limits are the budgets of reading one image (per reference, not per
// run): what an archive, a layout or a registry can make compare read,
// keep or write. A zero field takes its default. Exceeding Bytes, Entries,
// TempDisk or JSON stops with a *LimitError; a file larger than File is
// not analysed and the report says so in a note. Memory does not grow with
// any of them: file contents are streamed, never kept whole.
type Limits struct {
	// Bytes bounds the bytes read from layers and archives, counted both
	// as the streams' bytes and as the files' declared sizes, so a sparse
	// entry or a gzip bomb counts at what it expands to.
	Bytes int64
	// File is the largest file analysed (a package database, a Go
	// executable whose build info is read).
	File int64
	// Entries bounds tar entries (in the archive and in all layers) plus
	// the packages the image's databases list.
	Entries int64
	// TempDisk bounds the temporary disk in use at once: a gzip-compressed
	// archive decompressed once, and copies of Go executables.
	TempDisk int64
	// JSON is the largest JSON document read: index.json, manifest.json,
	// manifests and configs. At most checked.MaxJSON (4 MiB).
	JSON int64
}

// The default Limits.
const (
	DefaultMaxBytes    = 16 << 30
	DefaultMaxFile     = 256 << 20
	DefaultMaxEntries  = 1_000_000
	DefaultMaxTempDisk = 2 << 30
	DefaultMaxJSON     = checked.MaxJSON
)

// withDefaults fills zero fields with the defaults.
func (l Limits) withDefaults() Limits {
	set := func(v *int64, d int64) {
		if *v <= 0 {
			*v = d
		}
	}
	set(&l.Bytes, DefaultMaxBytes)
	set(&l.File, DefaultMaxFile)
	set(&l.Entries, DefaultMaxEntries)
	set(&l.TempDisk, DefaultMaxTempDisk)
	set(&l.JSON, DefaultMaxJSON)
	l.JSON = min(l.JSON, checked.MaxJSON)
	return l
}

// ErrLimit is what a *LimitError matches with errors.Is.
var ErrLimit = errors.New("over a reading budget")

// LimitError says which budget reading an image exceeded.
type LimitError struct {
	What  string // "bytes read", "entries", …
	Flag  string // the kiln compare flag that raises it
	Limit int64
}

func (e *LimitError) Error() string {
	n := fmt.Sprint(e.Limit)
	if e.What != "entries" {
		n = formatBytes(e.Limit)
	}
	return fmt.Sprintf("more %s than the budget of %s: stopped (raise %s if the image is trusted)", e.What, n, e.Flag)
}

func (e *LimitError) Is(target error) bool { return target == ErrLimit }

// meter counts one image's reading against its Limits. It is safe for
// concurrent use by the layers read at once.
type meter struct {
	lim      Limits
	stream   atomic.Int64 // bytes of tar streams and archives read
	declared atomic.Int64 // declared sizes of tar entries
	entries  atomic.Int64
	temp     atomic.Int64 // temporary disk in use
}

func newMeter(l Limits) *meter { return &meter{lim: l.withDefaults()} }

var (
	errBytes   = &LimitError{What: "bytes read", Flag: "--max-read"}
	errEntries = &LimitError{What: "entries", Flag: "--max-entries"}
	errTemp    = &LimitError{What: "temporary disk", Flag: "--max-temp-disk"}
)

func (m *meter) over(base *LimitError, limit int64) error {
	e := *base
	e.Limit = limit
	return &e
}

// read charges n streamed bytes.
func (m *meter) read(n int64) error {
	if m.stream.Add(n) > m.lim.Bytes {
		return m.over(errBytes, m.lim.Bytes)
	}
	return nil
}

// entry charges one entry of the declared size.
func (m *meter) entry(size int64) error {
	if m.entries.Add(1) > m.lim.Entries {
		return m.over(errEntries, m.lim.Entries)
	}
	if size > 0 && m.declared.Add(size) > m.lim.Bytes {
		return m.over(errBytes, m.lim.Bytes)
	}
	return nil
}

// items charges n entries (packages found) of no size.
func (m *meter) items(n int64) error {
	if m.entries.Add(n) > m.lim.Entries {
		return m.over(errEntries, m.lim.Entries)
	}
	return nil
}

// reserveTemp takes n bytes of temporary disk; release gives them back.
func (m *meter) reserveTemp(n int64) error {
	if m.temp.Add(n) > m.lim.TempDisk {
		m.temp.Add(-n)
		return m.over(errTemp, m.lim.TempDisk)
	}
	return nil
}

func (m *meter) releaseTemp(n int64) { m.temp.Add(-n) }

// meteredReader charges what is read through it and counts it.
type meteredReader struct {
	r io.Reader
	m *meter
	n int64
}

func (c *meteredReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if n > 0 {
		if merr := c.m.read(int64(n)); merr != nil {
			return n, merr
		}
	}
	return n, err
}

// formatBytes writes n in binary units, as the flags take them.
func formatBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
