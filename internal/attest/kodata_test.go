package attest_test

import (
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/attest"
)

// KO_DATA_DATE_EPOCH changes the image, so the provenance records it for a
// rebuild; unset, the field is absent.
func TestProvenanceKoDataDateEpoch(t *testing.T) {
	for _, tc := range []struct {
		t    time.Time
		want int64 // 0: absent
	}{{time.Time{}, 0}, {time.Unix(1700000000, 0), 1700000000}} {
		e := registryEnv(t)
		e.opts.KoDataTime = tc.t
		res, d := e.pushImage(t)
		if err := attest.Result(e.ctx, e.opts, res); err != nil {
			t.Fatal(err)
		}
		_, pred := e.checkAttested(t, d)
		got := pred.BuildDefinition.ExternalParameters.KoDataDateEpoch
		if (got == nil) != (tc.want == 0) || (got != nil && *got != tc.want) {
			t.Errorf("KoDataTime %v: koDataDateEpoch %v, want %d", tc.t, got, tc.want)
		}
	}
}
