package request

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/renameio/v2"

	"github.com/kilnbuild/kiln/internal/attest"
	"github.com/kilnbuild/kiln/internal/image"
	"github.com/kilnbuild/kiln/internal/pipeline"
	"github.com/kilnbuild/kiln/internal/sbom"
	"github.com/kilnbuild/kiln/internal/sign"
)

// sbomWriter does what ko's --sbom and --sbom-dir do, signed or not: it
// attaches each manifest's SBOM (each platform's image, and an index) at
// cosign's sha256-<hex>.sbom tag where the destination holds tags, and
// writes it to Dir as NAME-PLATFORM.EXT (NAME-index.EXT for an index).
//
// The tag names the image's digest, which is known before the image is
// pushed: to a registry, the SBOMs go up while the image does (before),
// and a package's build waits for them once its image is published
// (after), which reports them and fails with them. Elsewhere (a layout)
// they are written after the image.
type sbomWriter struct {
	kind  sbom.Kind
	dir   string     // "" writes no files
	store sign.Store // nil attaches nothing (archives, --push=false)
	env   Env

	early  map[string]*sbomPush // pushes started by before, by sbomKey
	stopFn context.CancelFunc   // ends the early pushes
	wg     sync.WaitGroup
}

// sbomPush is one package's SBOMs being attached ahead of its image.
type sbomPush struct {
	done  chan struct{}
	lines []string // progress, printed once the image is published
	err   error
}

// earlyPushes is how many packages' SBOMs go up at once ahead of their
// images; each is a few small blobs and a manifest.
const earlyPushes = 4

func sbomKey(res pipeline.Result) string { return res.ImportPath + "@" + res.Digest }

// newSBOMWriter is nil when b asks for no SBOM; it checks that the
// directory can be written before anything is built.
func newSBOMWriter(env Env, b Build) (*sbomWriter, error) {
	kind, err := sbom.ParseKind(b.SBOM)
	if err != nil || kind == sbom.KindNone {
		return nil, err
	}
	w := &sbomWriter{kind: kind, store: env.Signatures, env: env}
	if env.SBOMDir != "" {
		w.dir = abs(env.Dir, env.SBOMDir)
		if err := writable(w.dir); err != nil {
			return nil, fmt.Errorf("--sbom-dir %s: %w: give a directory kiln can write", env.SBOMDir, err)
		}
	}
	return w, nil
}

// writable makes dir and checks that a file can be created in it.
func writable(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".kiln-probe-*")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

// before is the pipeline's BeforePublish: to a registry, it starts
// attaching every result's SBOMs, beside the images' pushes.
func (w *sbomWriter) before(ctx context.Context, results []pipeline.Result) error {
	if _, ok := w.store.(*sign.RegistryStore); !ok || len(results) == 0 {
		return nil
	}
	ctx, w.stopFn = context.WithCancel(ctx)
	w.early = make(map[string]*sbomPush, len(results))
	sem := make(chan struct{}, earlyPushes)
	for _, res := range results {
		if w.early[sbomKey(res)] != nil {
			continue
		}
		p := &sbomPush{done: make(chan struct{})}
		w.early[sbomKey(res)] = p
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			defer close(p.done)
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
				p.err = ctx.Err()
				return
			}
			p.lines, p.err = w.attach(ctx, res)
		}()
	}
	return nil
}

// stop ends the SBOM pushes before started and waits for them: a run
// that failed leaves none going.
func (w *sbomWriter) stop() {
	if w.stopFn != nil {
		w.stopFn()
	}
	w.wg.Wait()
}

// after is the pipeline's AfterPublish for res: it waits for the SBOMs
// before started, or attaches them now.
func (w *sbomWriter) after(ctx context.Context, res pipeline.Result) error {
	lines, err := []string(nil), error(nil)
	if p := w.early[sbomKey(res)]; p != nil {
		select {
		case <-p.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		lines, err = p.lines, p.err
	} else {
		lines, err = w.attach(ctx, res)
	}
	for _, l := range lines {
		fmt.Fprintln(w.env.Progress, l)
	}
	return err
}

// attach attaches and writes the SBOMs of res, returning a progress line
// for each one attached.
func (w *sbomWriter) attach(ctx context.Context, res pipeline.Result) ([]string, error) {
	var lines []string
	name := path.Base(res.ImportPath)
	app := path.Join(image.AppDir, name)
	for _, img := range res.Images {
		h, err := v1.NewHash(img.Digest)
		if err != nil {
			return lines, err
		}
		doc, err := sbom.Render(w.kind, attest.SBOMInput(res, img, h, w.env.Created, w.env.KilnVersion, ""), app)
		if err != nil {
			return lines, fmt.Errorf("%s (%s): SBOM: %w", res.ImportPath, img.Platform, err)
		}
		if err := w.put(ctx, res, h, doc, w.kind.FileName(name, img.Platform), &lines); err != nil {
			return lines, err
		}
	}
	if len(res.Images) < 2 {
		return lines, nil
	}
	h, err := v1.NewHash(res.Digest)
	if err != nil {
		return lines, err
	}
	in := sbom.IndexInput{Index: res.Repo + "@" + res.Digest, Created: w.env.Created, Tool: "kiln-" + w.env.KilnVersion}
	for _, img := range res.Images {
		in.Images = append(in.Images, sbom.IndexImage{Digest: img.Digest, Platform: img.Platform})
	}
	doc, err := sbom.RenderIndex(w.kind, in)
	if err != nil || doc == nil {
		return lines, err
	}
	return lines, w.put(ctx, res, h, doc, w.kind.FileName(name, "index"), &lines)
}

// put attaches doc to the manifest h and writes it to the file name in
// dir; it adds the progress line of an attachment to lines.
func (w *sbomWriter) put(ctx context.Context, res pipeline.Result, h v1.Hash, doc []byte, file string, lines *[]string) error {
	if w.dir != "" {
		if err := renameio.WriteFile(filepath.Join(w.dir, file), doc, 0o644); err != nil {
			return fmt.Errorf("--sbom-dir: %w", err)
		}
	}
	if w.store == nil {
		return nil
	}
	img, err := sbom.Attachment(w.kind, doc)
	if err != nil {
		return err
	}
	tag := sbom.Tag(h)
	if err := w.store.Put(ctx, res.Repo, tag, img); err != nil {
		return fmt.Errorf("attaching the SBOM of %s@%s: %w", res.Repo, h, err)
	}
	*lines = append(*lines, fmt.Sprintf("%s: attached the %s SBOM %s:%s", res.ImportPath, w.kind, res.Repo, tag))
	return nil
}

// chain runs each hook in turn, stopping at the first error; nil when
// there is none.
func chain[T any](hooks ...func(context.Context, T) error) func(context.Context, T) error {
	if len(hooks) == 0 {
		return nil
	}
	return func(ctx context.Context, v T) error {
		for _, h := range hooks {
			if err := h(ctx, v); err != nil {
				return err
			}
		}
		return nil
	}
}
