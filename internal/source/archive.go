package source

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// entry is one checked archive entry, as readArchive hands it on.
type entry struct {
	Name     string // clean, relative, slash-separated
	Type     byte   // tar.TypeReg, TypeDir, TypeSymlink or TypeLink
	Linkname string // a symlink's target as written; a hard link's entry name
	Exec     bool   // the file is executable
	Body     io.Reader
}

// readArchive reads a tar.gz from r and calls visit for each entry,
// checking it before visit sees it: names must be clean relative paths
// without "..", no entry may lie below a symlink or repeat a name, only
// files, directories and links are allowed, a hard link must name an
// earlier file, and every symlink must resolve inside the tree (checked
// at the end, when all links are known, through the links on its way).
// Bytes are counted as they are read, never taken from headers: the
// archive's against MaxUpload, the unpacked ones against MaxUnpacked and
// MaxRatio. Each refusal wraps ErrInvalid.
func readArchive(r io.Reader, lim Limits, visit func(entry) error) error {
	in := &countingReader{r: r, max: lim.MaxUpload}
	gz, err := gzip.NewReader(in)
	if err != nil {
		return archiveErr(in, err, "it is not gzip-compressed: send a tar.gz")
	}
	out := &countingReader{r: gz, max: lim.MaxUnpacked, in: in, ratio: lim.MaxRatio}
	tr := tar.NewReader(out)
	var (
		n     int
		seen  = map[string]byte{} // name → type, with implied parents as dirs
		links = map[string]string{}
	)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return archiveErr(in, err, "it is not a valid tar.gz")
		}
		if n++; n > lim.MaxFiles {
			return invalidf("the archive has more than %d entries: remove what the build does not need", lim.MaxFiles)
		}
		if h.Typeflag == tar.TypeXGlobalHeader { // git archive writes one
			continue
		}
		name, err := entryName(h.Name)
		if err != nil {
			return err
		}
		if name == "." {
			if h.Typeflag != tar.TypeDir {
				return invalidf("entry %q is the archive's root but not a directory", h.Name)
			}
			continue
		}
		if err := checkPlace(seen, name, h.Typeflag); err != nil {
			return err
		}
		for k := range h.PAXRecords {
			if strings.HasPrefix(k, "GNU.sparse.") {
				return invalidf("%s is a sparse file: archives may hold only plain files, directories and links", name)
			}
		}
		// Body counts what the entry yields too, so nothing it expands to
		// escapes MaxUnpacked.
		e := entry{Name: name, Type: h.Typeflag, Exec: h.Mode&0o111 != 0, Body: &countingReader{r: tr, n: out.n, max: lim.MaxUnpacked, in: in, ratio: lim.MaxRatio}}
		switch h.Typeflag {
		case tar.TypeReg, tar.TypeRegA:
			e.Type = tar.TypeReg
		case tar.TypeDir:
		case tar.TypeSymlink:
			if h.Linkname == "" || path.IsAbs(h.Linkname) || strings.ContainsRune(h.Linkname, 0) {
				return invalidf("symlink %s points to %q: make it a relative path inside the tree", name, h.Linkname)
			}
			e.Linkname = h.Linkname
			links[name] = h.Linkname
		case tar.TypeLink:
			target, err := entryName(h.Linkname)
			if err != nil || seen[target] != tar.TypeReg {
				return invalidf("hard link %s must name an earlier file of the archive, not %q", name, h.Linkname)
			}
			e.Linkname = target
		case tar.TypeChar, tar.TypeBlock:
			return invalidf("%s is a device: archives may hold only files, directories and links", name)
		case tar.TypeFifo:
			return invalidf("%s is a fifo: archives may hold only files, directories and links", name)
		default:
			return invalidf("%s has tar type %q: archives may hold only files, directories and links", name, h.Typeflag)
		}
		seen[name] = e.Type
		if err := visit(e); err != nil {
			if b := (*budgetError)(nil); errors.As(err, &b) {
				return archiveErr(in, err, "")
			}
			return err
		}
	}
	// The rest of the stream: tar's end blocks, then gzip's trailer (its
	// CRC and size are checked at EOF).
	if _, err := io.Copy(io.Discard, out); err != nil {
		return archiveErr(in, err, "it is not a valid tar.gz")
	}
	for name := range links {
		if err := resolveLink(links, name); err != nil {
			return err
		}
	}
	return nil
}

// entryName cleans a tar name ("./a/b/" → "a/b") and refuses absolute
// names and any ".." element.
func entryName(raw string) (string, error) {
	if raw == "" || strings.ContainsRune(raw, 0) || strings.ContainsRune(raw, '\\') {
		return "", invalidf("entry %q has an unusable name", raw)
	}
	if path.IsAbs(raw) {
		return "", invalidf("entry %q is an absolute path: archive paths must be relative", raw)
	}
	for _, e := range strings.Split(raw, "/") {
		if e == ".." {
			return "", fmt.Errorf("%w: entry %q contains \"..\" and %w: archive paths must stay inside", ErrInvalid, raw, errNotLocal)
		}
	}
	return path.Clean(raw), nil
}

// checkPlace refuses an entry whose name was used before (a directory may
// repeat) or that lies below a symlink or a file; it records the
// entry's parents as directories.
func checkPlace(seen map[string]byte, name string, typ byte) error {
	if prev, ok := seen[name]; ok && !(prev == tar.TypeDir && typ == tar.TypeDir) {
		return invalidf("entry %s appears twice: each path may appear once", name)
	}
	for p := path.Dir(name); p != "."; p = path.Dir(p) {
		switch t, ok := seen[p]; {
		case !ok:
			seen[p] = tar.TypeDir
		case t == tar.TypeSymlink:
			return fmt.Errorf("%w: entry %s lies below symlink %s and %w: archive entries may not go through links", ErrInvalid, name, p, errNotLocal)
		case t != tar.TypeDir:
			return invalidf("entry %s lies below file %s", name, p)
		}
	}
	return nil
}

// resolveLink follows the symlink name through the archive's links, as
// the kernel would after extraction, and refuses it if it leaves the
// tree or loops.
func resolveLink(links map[string]string, name string) error {
	_, err := resolvePath(links, name, path.Dir(name), links[name])
	return err
}

// resolvePath follows target from the directory dir through the
// archive's links, as the kernel would after extraction, and returns the
// archive path it ends at ("." for the root); it refuses a path that
// leaves the tree or loops. name is what the error calls the path.
func resolvePath(links map[string]string, name, dir, target string) (string, error) {
	cur := strings.Split(dir, "/")
	if cur[0] == "." {
		cur = nil
	}
	todo := strings.Split(target, "/")
	for hops := 0; len(todo) > 0; {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
		case "..":
			if len(cur) == 0 {
				return "", fmt.Errorf("%w: symlink %s -> %s %w: make it point inside the tree", ErrInvalid, name, target, errNotLocal)
			}
			cur = cur[:len(cur)-1]
		default:
			cur = append(cur, c)
			t, ok := links[strings.Join(cur, "/")]
			if !ok {
				continue
			}
			if hops++; hops > 40 {
				return "", invalidf("symlink %s loops: fix its target", name)
			}
			cur = cur[:len(cur)-1]
			todo = append(strings.Split(t, "/"), todo...)
		}
	}
	if len(cur) == 0 {
		return ".", nil
	}
	return strings.Join(cur, "/"), nil
}

// archiveErr classifies a read error: a budget exceeded or a malformed
// stream is the client's (ErrInvalid); a failing reader is not.
func archiveErr(in *countingReader, err error, what string) error {
	var b *budgetError
	switch {
	case errors.As(err, &b):
		return fmt.Errorf("%w: %s", ErrInvalid, b.msg)
	case in.err != nil:
		return fmt.Errorf("reading the archive: %w", in.err)
	}
	return invalidf("%s (%v)", what, err)
}

type budgetError struct{ msg string }

func (e *budgetError) Error() string { return e.msg }

// countingReader counts bytes read through it and fails once they pass
// max, or, with ratio set, once they pass ratio times in's count (after
// ratioSlack bytes).
type countingReader struct {
	r     io.Reader
	n     int64
	max   int64
	in    *countingReader
	ratio int64
	err   error // the underlying reader's error, other than EOF
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF && c.in == nil {
		c.err = err
	}
	switch {
	case c.in == nil && c.n > c.max:
		return n, &budgetError{fmt.Sprintf("the archive is larger than %d bytes: send a smaller one", c.max)}
	case c.in != nil && c.n > c.max:
		return n, &budgetError{fmt.Sprintf("the archive unpacks to more than %d bytes: send a smaller one", c.max)}
	case c.in != nil && c.n > ratioSlack && c.n > c.ratio*c.in.n:
		return n, &budgetError{fmt.Sprintf("the archive unpacks to more than %d times its size: it looks like a gzip bomb", c.ratio)}
	}
	return n, err
}
