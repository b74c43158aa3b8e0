package pipeline

import (
	"context"
	"path"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kilnbuild/kiln/internal/gobuild"
	"github.com/kilnbuild/kiln/internal/image"
	"github.com/kilnbuild/kiln/internal/platform"
)

// Debugger puts a debugger into every image that starts the program
// (kiln build --debug, ko's Delve): delve.Builder is one.
type Debugger interface {
	// Supports reports whether the debugger runs on p.
	Supports(p v1.Platform) bool
	// Binary is the debugger for p; built is false when it came from the
	// cache.
	Binary(ctx context.Context, p v1.Platform) (path string, built bool, err error)
	// Entrypoint starts the program at app under the debugger at dbg.
	Entrypoint(dbg, app string) []string
}

// debuggerName is the debugger's name in the image's AppDir, as in ko.
const debuggerName = "dlv"

// debugger is the layer holding the debugger for p and the entrypoint
// that starts the program under it; nil when the run does not debug, or
// p has no debugger (then the image is built without one, as ko does).
func (b *pkgBuild) debugger(ctx context.Context, p v1.Platform) (*image.Layer, []string, error) {
	d := b.r.opts.Debugger
	if d == nil {
		return nil, nil, nil
	}
	if !d.Supports(p) {
		b.r.p.printf("%s %s: no debugger runs on this platform: built without one", b.pkg.ImportPath, platform.String(p))
		return nil, nil, nil
	}
	start := time.Now()
	select {
	case b.r.sem <- struct{}{}: // building it is a compile
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	bin, built, err := d.Binary(ctx, p)
	<-b.r.sem
	if err != nil {
		return nil, nil, err
	}
	id, err := gobuild.BuildID(bin)
	if err != nil {
		return nil, nil, err
	}
	how := "from the cache"
	if built {
		how = "built in " + secs(time.Since(start))
	}
	b.r.p.printf("%s %s: debugger %s", b.pkg.ImportPath, platform.String(p), how)
	l, err := b.r.layers.Build(ctx, "debugger-buildid:"+id, image.BinaryEntries(bin, debuggerName, nil), b.lopts)
	if err != nil {
		return nil, nil, err
	}
	dbg := path.Join(image.AppDir, debuggerName)
	return &image.Layer{Layer: l, CreatedBy: "kiln build " + b.pkg.ImportPath, Comment: "debugger, at " + dbg},
		d.Entrypoint(dbg, path.Join(image.AppDir, b.binName)), nil
}
