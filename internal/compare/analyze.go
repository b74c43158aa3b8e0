package compare

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"
)

// Limits on what is read from an image beyond its metadata.
const (
	// maxGoExecutable is the largest ELF file whose Go build info is read.
	maxGoExecutable = 200 << 20
	// maxDatabase is the largest package database or /etc/passwd kept.
	maxDatabase = 64 << 20
	// maxAttestation is the largest attestation layer read.
	maxAttestation = 64 << 20
)

// entry is one path in an image's filesystem, from the topmost layer that
// has it.
type entry struct {
	typ   byte
	mode  int64 // permission bits with setuid (04000), setgid (02000), sticky (01000)
	size  int64
	uid   int
	gid   int
	link  string    // target of a symlink or hard link
	data  []byte    // contents, kept only for the databases parsed below
	gobin *GoBinary // build info of a Go executable
}

// pathEntry is an entry as one layer's tar stream gives it.
type pathEntry struct {
	path string
	e    *entry
}

// layerRead is what one pass over a layer's tar stream found.
type layerRead struct {
	entries      []pathEntry
	whiteouts    []string // paths hidden in lower layers (.wh.NAME)
	opaque       []string // directories whose lower contents are hidden (.wh..wh..opq)
	uncompressed int64
}

// node is a directory tree of the final filesystem; a directory that no
// layer lists but that holds something has a nil entry.
type node struct {
	e    *entry
	kids map[string]*node
}

func (n *node) child(name string, create bool) *node {
	c := n.kids[name]
	if c == nil && create {
		if n.kids == nil {
			n.kids = map[string]*node{}
		}
		c = &node{}
		n.kids[name] = c
	}
	return c
}

// walk finds p ("/a/b"), creating missing directories when create is set.
// It does not follow symlinks.
func (n *node) walk(p string, create bool) *node {
	cur := n
	for _, part := range strings.Split(strings.Trim(p, "/"), "/") {
		if part == "" {
			continue
		}
		if cur = cur.child(part, create); cur == nil {
			return nil
		}
	}
	return cur
}

func (n *node) remove(p string) {
	dir, base := path.Split(p)
	if parent := n.walk(dir, false); parent != nil {
		delete(parent.kids, base)
	}
}

// resolve follows symlinks in every component of p, as the kernel would
// inside the image, and returns the node it ends at, if any.
func (n *node) resolve(p string) *node {
	parts := splitPath(p)
	var stack []string
	for hops := 0; len(parts) > 0; {
		part := parts[0]
		parts = parts[1:]
		switch part {
		case "", ".":
			continue
		case "..":
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		cur := n.walk("/"+strings.Join(append(stack, part), "/"), false)
		if cur == nil {
			return nil
		}
		if cur.e != nil && cur.e.typ == tar.TypeSymlink {
			if hops++; hops > 40 {
				return nil
			}
			if strings.HasPrefix(cur.e.link, "/") {
				stack = stack[:0]
			}
			parts = append(splitPath(cur.e.link), parts...)
			continue
		}
		stack = append(stack, part)
	}
	return n.walk("/"+strings.Join(stack, "/"), false)
}

func splitPath(p string) []string { return strings.Split(strings.Trim(p, "/"), "/") }

// Analyze reads src's image: every layer streamed once through archive/tar
// (a few layers at a time, at most opt.Jobs), whiteouts applied in layer
// order, and the final filesystem inspected.
func Analyze(ctx context.Context, src *Source, opt Options) (*Image, error) {
	img, err := analyze(ctx, src, opt)
	if err != nil {
		return nil, fmt.Errorf("%s: %s", src.Ref, oneLine(err.Error()))
	}
	return img, nil
}

func analyze(ctx context.Context, src *Source, opt Options) (*Image, error) {
	m, err := src.Image.Manifest()
	if err != nil {
		return nil, fmt.Errorf("reading the manifest: %v", err)
	}
	cf, err := src.Image.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the config: %v", err)
	}
	layers, err := src.Image.Layers()
	if err != nil {
		return nil, fmt.Errorf("reading the layers: %v", err)
	}
	out := &Image{
		Ref:        src.Ref,
		Kind:       src.Kind,
		Digest:     src.Digest.String(),
		Platform:   src.Platform,
		ConfigSize: m.Config.Size,
		Layers:     make([]Layer, len(layers)),
		Config: Config{
			User:       cf.Config.User,
			Entrypoint: cf.Config.Entrypoint,
			Cmd:        cf.Config.Cmd,
			Env:        cf.Config.Env,
			WorkingDir: cf.Config.WorkingDir,
		},
	}
	if src.IndexDigest.Hex != "" {
		out.IndexDigest = src.IndexDigest.String()
	}
	var createdBy []string
	for _, h := range cf.History {
		if !h.EmptyLayer {
			createdBy = append(createdBy, h.CreatedBy)
		}
	}

	reads := make([]*layerRead, len(layers))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opt.jobs())
	for i, l := range layers {
		g.Go(func() error {
			r, err := readLayer(gctx, l, opt.TempDir)
			if err != nil {
				d, _ := l.Digest()
				return fmt.Errorf("layer %d (%s): %v", i+1, d, err)
			}
			reads[i] = r
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}

	root := &node{}
	for i, r := range reads {
		ld := Layer{UncompressedSize: r.uncompressed, Entries: len(r.entries) + len(r.whiteouts) + len(r.opaque)}
		if i < len(m.Layers) {
			ld.Digest = m.Layers[i].Digest.String()
			ld.MediaType = string(m.Layers[i].MediaType)
			ld.CompressedSize = m.Layers[i].Size
		}
		if i < len(createdBy) && len(createdBy) == len(layers) {
			ld.CreatedBy = createdBy[i]
		}
		out.Layers[i] = ld
		out.CompressedSize += ld.CompressedSize
		out.UncompressedSize += ld.UncompressedSize

		for _, d := range r.opaque {
			if n := root.walk(d, false); n != nil {
				n.kids = nil
			}
		}
		for _, p := range r.whiteouts {
			root.remove(p)
		}
		for _, pe := range r.entries {
			n := root.walk(pe.path, true)
			if pe.e.typ != tar.TypeDir {
				n.kids = nil
			}
			n.e = pe.e
		}
	}
	inspect(root, out, opt.topFiles())
	if err := readSBOM(ctx, src, out); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// The image itself was read: report it, with its own packages.
		out.Notes = append(out.Notes, "no SBOM read: "+oneLine(err.Error()))
	}
	return out, nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// readLayer streams one layer: every header is recorded; file contents are
// skipped except package databases, /etc/passwd and ELF executables.
//
// Go build info: debug/buildinfo.Read needs an io.ReaderAt over the whole
// executable, and Go binaries run to tens of MB, so an executable ELF file
// (under maxGoExecutable) is copied from the stream into one temporary file
// per layer, reused and removed at the end. Memory stays bounded by tar's
// buffers whatever the image holds; the page cache keeps the copy about as
// fast as a buffer in memory would be.
func readLayer(ctx context.Context, l v1.Layer, tempDir string) (*layerRead, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	cr := &countingReader{r: rc}
	tr := tar.NewReader(cr)
	out := &layerRead{}
	var tmp *os.File
	defer func() {
		if tmp != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("not a readable tar stream: %v", err)
		}
		p := path.Clean("/" + hdr.Name)
		if p == "/" {
			continue
		}
		dir, base := path.Split(p)
		if base == ".wh..wh..opq" {
			out.opaque = append(out.opaque, path.Clean(dir))
			continue
		}
		if name, ok := strings.CutPrefix(base, ".wh."); ok {
			out.whiteouts = append(out.whiteouts, path.Join(dir, name))
			continue
		}
		typ := hdr.Typeflag
		if typ == tar.TypeRegA {
			typ = tar.TypeReg
		}
		e := &entry{typ: typ, mode: hdr.Mode, size: hdr.Size, uid: hdr.Uid, gid: hdr.Gid, link: hdr.Linkname}
		if typ != tar.TypeReg {
			e.size = 0
		}
		out.entries = append(out.entries, pathEntry{p, e})
		if typ != tar.TypeReg {
			continue
		}
		switch {
		case isDatabase(p) && hdr.Size <= maxDatabase:
			if e.data, err = io.ReadAll(tr); err != nil {
				return nil, fmt.Errorf("reading %s: %v", p, err)
			}
		case hdr.Mode&0o111 != 0 && hdr.Size >= 64 && hdr.Size < maxGoExecutable:
			var magic [4]byte
			if _, err := io.ReadFull(tr, magic[:]); err != nil {
				return nil, fmt.Errorf("reading %s: %v", p, err)
			}
			if string(magic[:]) != "\x7fELF" {
				continue
			}
			if tmp == nil {
				if tmp, err = os.CreateTemp(tempDir, "kiln-compare-elf-*"); err != nil {
					return nil, err
				}
			}
			if e.gobin, err = goBuildInfo(tmp, magic[:], tr); err != nil {
				return nil, fmt.Errorf("reading %s: %v", p, err)
			}
			if e.gobin != nil {
				e.gobin.Path = p
			}
		}
	}
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return nil, fmt.Errorf("reading past the end of the tar stream: %v", err)
	}
	out.uncompressed = cr.n
	return out, nil
}
