package image_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnbuild/kiln/internal/image"
)

// KO_DATA_PATH_ALLOWED_ROOT: a kodata symlink may leave the module when it
// stays inside the allowed root; a root that does not hold kodata is
// ignored (the module applies), as ko ignores it.
func TestKoDataAllowedRoot(t *testing.T) {
	// top/shared/license, top/module/cmd/app/kodata/license -> ../../../../shared/license
	top := t.TempDir()
	tree(t, top, map[string]string{
		"shared/license":                   "644",
		"elsewhere/x":                      "644",
		"module/go.mod":                    "644",
		"module/cmd/app/kodata/license":    "->../../../../shared/license",
		"module2/cmd/app/kodata/secret":    "->../../../../elsewhere/x",
		"module3/cmd/app/kodata/inmodule":  "->../../../go.mod",
		"module3/go.mod":                   "644",
		"module4/cmd/app/kodata/license":   "->../../../../shared/license",
		"module4/cmd/app/kodata/local.txt": "644",
	})
	for _, tc := range []struct {
		name, module, allowed string
		want                  string // the license's source, relative to top
		err                   string // else the error
	}{
		{name: "outside the module, inside the allowed root", module: "module", allowed: top, want: "shared/license"},
		{name: "without the allowed root, refused", module: "module", err: "outside " + filepath.Join(top, "module") + ": copy the file into the module instead"},
		{name: "allowed root that does not hold kodata is ignored", module: "module", allowed: filepath.Join(top, "shared"), err: "copy the file into the module instead"},
		{name: "outside the allowed root, refused", module: "module2", allowed: filepath.Join(top, "module2"), err: "outside " + filepath.Join(top, "module2") + ": copy the file in, or set KO_DATA_PATH_ALLOWED_ROOT to a directory that holds it"},
		{name: "allowed root narrower than the module", module: "module3", allowed: filepath.Join(top, "module3", "cmd"), err: "outside " + filepath.Join(top, "module3", "cmd")},
		{name: "allowed root that does not exist is ignored", module: "module4", allowed: filepath.Join(top, "missing"), err: "copy the file into the module instead"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			module := filepath.Join(top, tc.module)
			es, err := image.KoData{AllowedRoot: tc.allowed}.Entries(filepath.Join(module, "cmd", "app", "kodata"), module)
			if tc.err != "" {
				if !errors.Is(err, image.ErrKoDataEscape) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Entries = %d entries, %v; want ErrKoDataEscape containing %q", len(es), err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(es) != 2 || es[1].Path != "/var/run/ko/license" || es[1].Source != filepath.Join(top, tc.want) {
				t.Errorf("entries = %+v, want /var/run/ko/license from %s", es, tc.want)
			}
		})
	}
}
