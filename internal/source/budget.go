package source

import (
	"io"
	"os"
	"sync/atomic"

	"github.com/go-git/go-billy/v5"
)

// budget counts the bytes a fetch writes into a build's directory (and
// reads off the network for git) against Limits.MaxSource; the write
// that passes it fails with ErrInvalid, and the fetch with it.
type budget struct {
	max  int64
	used atomic.Int64
}

func (f *Fetcher) newBudget() *budget {
	return &budget{max: f.Limits.withDefaults().MaxSource}
}

func (b *budget) spend(n int) error {
	if b.used.Add(int64(n)) > b.max {
		return b.tooLarge()
	}
	return nil
}

// fits refuses n more bytes when they would pass the budget, spending
// nothing: for sizes declared before anything is written.
func (b *budget) fits(n int64) error {
	if n > b.max-b.used.Load() {
		return b.tooLarge()
	}
	return nil
}

func (b *budget) tooLarge() error {
	return invalidf("the source is larger than the server's limit of %d bytes: build a smaller module, or ask for a larger --max-source", b.max)
}

// writer counts what it writes through w.
func (b *budget) writer(w io.Writer) io.Writer { return budgetWriter{w, b} }

type budgetWriter struct {
	w io.Writer
	b *budget
}

func (w budgetWriter) Write(p []byte) (int, error) {
	if err := w.b.spend(len(p)); err != nil {
		return 0, err
	}
	return w.w.Write(p)
}

// reader counts what it reads from r.
func (b *budget) reader(r io.Reader) io.Reader { return budgetReader{r, b} }

type budgetReader struct {
	r io.Reader
	b *budget
}

func (r budgetReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if serr := r.b.spend(n); serr != nil {
		return n, serr
	}
	return n, err
}

// budgetFS is a billy.Filesystem whose files count their writes: go-git
// writes a checkout and its .git through it.
type budgetFS struct {
	billy.Filesystem
	b *budget
}

var _ billy.Filesystem = budgetFS{}

func (fs budgetFS) Create(name string) (billy.File, error) {
	return fs.wrap(fs.Filesystem.Create(name))
}

func (fs budgetFS) OpenFile(name string, flag int, perm os.FileMode) (billy.File, error) {
	return fs.wrap(fs.Filesystem.OpenFile(name, flag, perm))
}

func (fs budgetFS) TempFile(dir, prefix string) (billy.File, error) {
	return fs.wrap(fs.Filesystem.TempFile(dir, prefix))
}

func (fs budgetFS) Chroot(path string) (billy.Filesystem, error) {
	sub, err := fs.Filesystem.Chroot(path)
	if err != nil {
		return nil, err
	}
	return budgetFS{sub, fs.b}, nil
}

func (fs budgetFS) wrap(f billy.File, err error) (billy.File, error) {
	if err != nil {
		return nil, err
	}
	return budgetFile{f, fs.b}, nil
}

type budgetFile struct {
	billy.File
	b *budget
}

func (f budgetFile) Write(p []byte) (int, error) {
	if err := f.b.spend(len(p)); err != nil {
		return 0, err // no path: the client reads the message
	}
	return f.File.Write(p)
}
