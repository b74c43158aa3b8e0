package request

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/renameio/v2"

	"github.com/kilnbuild/kiln/internal/attest"
	"github.com/kilnbuild/kiln/internal/image"
	"github.com/kilnbuild/kiln/internal/pipeline"
	"github.com/kilnbuild/kiln/internal/sbom"
	"github.com/kilnbuild/kiln/internal/sign"
)

// sbomWriter does what ko's --sbom and --sbom-dir do, signed or not: after
// each package is published, it attaches each manifest's SBOM (each
// platform's image, and an index) at cosign's sha256-<hex>.sbom tag where
// the destination holds tags, and writes it to Dir as NAME-PLATFORM.EXT
// (NAME-index.EXT for an index).
type sbomWriter struct {
	kind  sbom.Kind
	dir   string     // "" writes no files
	store sign.Store // nil attaches nothing (archives, --push=false)
	env   Env
}

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

// after is the pipeline's AfterPublish for res.
func (w *sbomWriter) after(ctx context.Context, res pipeline.Result) error {
	name := path.Base(res.ImportPath)
	app := path.Join(image.AppDir, name)
	for _, img := range res.Images {
		h, err := v1.NewHash(img.Digest)
		if err != nil {
			return err
		}
		doc, err := sbom.Render(w.kind, attest.SBOMInput(res, img, h, w.env.Created, w.env.KilnVersion, ""), app)
		if err != nil {
			return fmt.Errorf("%s (%s): SBOM: %w", res.ImportPath, img.Platform, err)
		}
		if err := w.put(ctx, res, h, doc, w.kind.FileName(name, img.Platform)); err != nil {
			return err
		}
	}
	if len(res.Images) < 2 {
		return nil
	}
	h, err := v1.NewHash(res.Digest)
	if err != nil {
		return err
	}
	in := sbom.IndexInput{Index: res.Repo + "@" + res.Digest, Created: w.env.Created, Tool: "kiln-" + w.env.KilnVersion}
	for _, img := range res.Images {
		in.Images = append(in.Images, sbom.IndexImage{Digest: img.Digest, Platform: img.Platform})
	}
	doc, err := sbom.RenderIndex(w.kind, in)
	if err != nil || doc == nil {
		return err
	}
	return w.put(ctx, res, h, doc, w.kind.FileName(name, "index"))
}

// put attaches doc to the manifest h and writes it to the file name in dir.
func (w *sbomWriter) put(ctx context.Context, res pipeline.Result, h v1.Hash, doc []byte, file string) error {
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
	fmt.Fprintf(w.env.Progress, "%s: attached the %s SBOM %s:%s\n", res.ImportPath, w.kind, res.Repo, tag)
	return nil
}

// chainAfter runs each hook in turn; nil when there is none.
func chainAfter(hooks ...func(context.Context, pipeline.Result) error) func(context.Context, pipeline.Result) error {
	if len(hooks) == 0 {
		return nil
	}
	return func(ctx context.Context, res pipeline.Result) error {
		for _, h := range hooks {
			if err := h(ctx, res); err != nil {
				return err
			}
		}
		return nil
	}
}
