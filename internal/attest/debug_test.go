package attest_test

import (
	"testing"

	"github.com/kilnbuild/kiln/internal/attest"
)

// --debug changes the image (Delve's layer and entrypoint), so the
// provenance records it for a rebuild; without it the field is absent.
func TestProvenanceDebug(t *testing.T) {
	for _, debug := range []bool{false, true} {
		e := registryEnv(t)
		e.opts.Debug = debug
		res, d := e.pushImage(t)
		if err := attest.Result(e.ctx, e.opts, res); err != nil {
			t.Fatal(err)
		}
		_, pred := e.checkAttested(t, d)
		if got := pred.BuildDefinition.ExternalParameters.Debug; got != debug {
			t.Errorf("Debug %v: provenance debug %v", debug, got)
		}
	}
}
