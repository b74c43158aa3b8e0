package compare

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"github.com/kilnbuild/kiln/internal/checked"
	"github.com/kilnbuild/kiln/internal/oneline"
)

// maxAttestation is the largest attestation layer read.
const maxAttestation = 64 << 20

// entry is one path in an image's filesystem, from the topmost layer that
// has it.
type entry struct {
	typ   byte
	mode  int64 // permission bits with setuid (04000), setgid (02000), sticky (01000)
	size  int64
	uid   int
	gid   int
	link  string            // target of a symlink or hard link
	pkgs  []Package         // what a package database lists
	users map[string]string // /etc/passwd: name → uid
	gobin *GoBinary         // build info of a Go executable
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
	notes        []string // files not analysed, and why
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
		return nil, &refError{ref: src.Ref, err: err}
	}
	return img, nil
}

func analyze(ctx context.Context, src *Source, opt Options) (*Image, error) {
	mt := src.meter
	if mt == nil {
		mt = newMeter(opt.Limits)
	}
	m, err := src.Image.Manifest()
	if err != nil {
		return nil, fmt.Errorf("reading the manifest: %v", err)
	}
	if m.Config.Size > mt.lim.JSON {
		return nil, jsonTooLarge("config "+m.Config.Digest.String(), m.Config.Size, mt.lim.JSON)
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
			r, err := readLayer(gctx, l, opt.TempDir, mt)
			if err != nil {
				d, _ := l.Digest()
				return fmt.Errorf("layer %d (%s): %w", i+1, d, err)
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
		out.Notes = append(out.Notes, r.notes...)
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
		out.Notes = append(out.Notes, "no SBOM read: "+oneline.First(err.Error()))
	}
	return out, nil
}

// readLayer streams one layer: every header is recorded and charged to
// the meter; file contents are skipped except package databases and
// /etc/passwd (parsed as they stream past) and ELF executables.
//
// Go build info: debug/buildinfo.Read needs an io.ReaderAt over the whole
// executable, and Go binaries run to tens of MB, so an executable ELF file
// (at most the largest-file budget) is copied from the stream into one
// temporary file per layer, reused and removed at the end, its size
// reserved from the temp-disk budget while it is there. Memory stays
// bounded by tar's buffers whatever the image holds; the page cache keeps
// the copy about as fast as a buffer in memory would be. A file over a
// budget is not analysed, and a note says so.
func readLayer(ctx context.Context, l v1.Layer, tempDir string, m *meter) (*layerRead, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	cr := &meteredReader{r: rc, m: m}
	tr := tar.NewReader(cr)
	out := &layerRead{}
	var tmp *os.File
	var held int64
	defer func() {
		m.releaseTemp(held)
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
			var le *LimitError
			var me *checked.MismatchError
			if errors.As(err, &le) || errors.As(err, &me) {
				return nil, err
			}
			// Changed bytes often read as a broken tar before the layer's
			// end shows why: read on (within the budget) for the verdict.
			if derr := checked.Drain(cr); errors.As(derr, &me) || errors.As(derr, &le) {
				return nil, derr
			}
			return nil, fmt.Errorf("not a readable tar stream: %v", err)
		}
		typ := hdr.Typeflag
		if typ == tar.TypeRegA {
			typ = tar.TypeReg
		}
		var size int64
		if typ == tar.TypeReg || typ == tar.TypeGNUSparse {
			size = hdr.Size // declared: a sparse file counts at what it reads as
		}
		if err := m.entry(size); err != nil {
			return nil, err
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
		if typ == tar.TypeGNUSparse {
			typ = tar.TypeReg
		}
		e := &entry{typ: typ, mode: hdr.Mode, size: size, uid: hdr.Uid, gid: hdr.Gid, link: hdr.Linkname}
		out.entries = append(out.entries, pathEntry{p, e})
		if typ != tar.TypeReg {
			continue
		}
		tooLarge := func(what string) {
			out.notes = append(out.notes, fmt.Sprintf("%s not analysed as %s: %s, larger than the %s budget for one file (--max-file)",
				p, what, formatSize(hdr.Size), formatBytes(m.lim.File)))
		}
		switch {
		case isDatabase(p):
			if hdr.Size > m.lim.File {
				tooLarge("a package database")
				continue
			}
			switch {
			case p == etcPasswd:
				e.users, err = parsePasswd(tr, m)
			case p == apkInstalled:
				e.pkgs, err = parseApk(tr, m)
			default:
				e.pkgs, err = parseDpkg(tr, p, m)
			}
			if err != nil {
				return nil, readError(p, err)
			}
		case hdr.Mode&0o111 != 0 && hdr.Size >= 64:
			var magic [4]byte
			if _, err := io.ReadFull(tr, magic[:]); err != nil {
				return nil, readError(p, err)
			}
			if string(magic[:]) != "\x7fELF" {
				continue
			}
			if hdr.Size > m.lim.File {
				tooLarge("a Go executable")
				continue
			}
			if hdr.Size > held {
				if err := m.reserveTemp(hdr.Size - held); err != nil {
					out.notes = append(out.notes, fmt.Sprintf("%s not analysed as a Go executable: %v", p, err))
					continue
				}
				held = hdr.Size
			}
			if tmp == nil {
				if tmp, err = os.CreateTemp(tempDir, "kiln-compare-elf-*"); err != nil {
					return nil, err
				}
			}
			if e.gobin, err = goBuildInfo(tmp, magic[:], tr); err != nil {
				return nil, readError(p, err)
			}
			if e.gobin != nil {
				e.gobin.Path = p
			}
		}
	}
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return nil, readError("past the end of the tar stream", err)
	}
	out.uncompressed = cr.n
	return out, nil
}

// readError keeps a budget's or a checked reader's error as it is.
func readError(what string, err error) error {
	var le *LimitError
	var me *checked.MismatchError
	if errors.As(err, &le) || errors.As(err, &me) {
		return err
	}
	return fmt.Errorf("reading %s: %v", what, err)
}

// formatSize writes n in the largest binary unit that keeps it whole, or
// in MiB with one decimal.
func formatSize(n int64) string {
	if n >= 1<<20 && n%(1<<20) != 0 {
		return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
	}
	return formatBytes(n)
}
