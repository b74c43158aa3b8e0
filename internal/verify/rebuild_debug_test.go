package verify

import (
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/config"
	"github.com/kilnbuild/kiln/internal/provenance"
)

// A rebuild repeats what the provenance records that changes the image:
// --debug (Delve's layer and entrypoint) and KO_DATA_DATE_EPOCH.
func TestRebuildOptionsRepeat(t *testing.T) {
	epoch := int64(1700000000)
	for _, tc := range []struct {
		name      string
		p         provenance.ExternalParameters
		debug     bool
		kodataSet bool
	}{
		{"plain", provenance.ExternalParameters{}, false, false},
		{"debug", provenance.ExternalParameters{Debug: true}, true, false},
		{"kodata epoch", provenance.ExternalParameters{KoDataDateEpoch: &epoch}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := rebuildOptions(tc.p, RebuildOptions{}, t.TempDir(), t.TempDir(), &config.Config{})
			if got := opts.Debugger != nil; got != tc.debug {
				t.Errorf("debugger set %v, want %v", got, tc.debug)
			}
			if got := !opts.KoData.ModTime.IsZero(); got != tc.kodataSet {
				t.Errorf("kodata mtime set %v, want %v", got, tc.kodataSet)
			} else if tc.kodataSet && !opts.KoData.ModTime.Equal(time.Unix(epoch, 0)) {
				t.Errorf("kodata mtime %v, want %v", opts.KoData.ModTime, time.Unix(epoch, 0))
			}
		})
	}
}
