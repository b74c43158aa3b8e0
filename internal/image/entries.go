package image

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/kilnbuild/kiln/internal/layer"
)

// BinaryEntries is the binary at /ko-app/<name>, mode 0555, owned by root,
// with file capabilities when caps (capability numbers) is not empty.
func BinaryEntries(binary, name string, caps []int) []layer.Entry {
	e := layer.Entry{Path: path.Join(AppDir, name), Kind: layer.File, Mode: 0o555, Source: binary}
	if len(caps) > 0 {
		e.PAXRecords = map[string]string{"SCHILY.xattr.security.capability": string(capabilityXattr(caps))}
	}
	return []layer.Entry{{Path: AppDir, Kind: layer.Dir, Mode: 0o555}, e}
}

// capabilityXattr encodes security.capability (vfs_cap_data revision 2) with
// caps permitted and effective. Revision 2 holds capabilities 0 to 63; other
// numbers (which config parsing rejects) are left out rather than panicking.
func capabilityXattr(caps []int) []byte {
	const revision2, effective = 0x02000000, 0x1
	var permitted [2]uint32
	for _, c := range caps {
		if c < 0 || c >= 64 {
			continue
		}
		permitted[c/32] |= 1 << (c % 32)
	}
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b[0:], revision2|effective)
	binary.LittleEndian.PutUint32(b[4:], permitted[0])
	binary.LittleEndian.PutUint32(b[12:], permitted[1])
	return b
}

// File is an extra file put into the image.
type File struct {
	Source string // on disk
	Path   string // absolute, in the image
	Mode   fs.FileMode
}

// FileEntries turns extra files into layer entries; a source that is missing
// or not a regular file is an error.
func FileEntries(files []File) ([]layer.Entry, error) {
	entries := make([]layer.Entry, 0, len(files))
	for _, f := range files {
		st, err := os.Stat(f.Source)
		if err != nil {
			return nil, fmt.Errorf("extra file %s: %w", f.Source, err)
		}
		if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("extra file %s: not a regular file", f.Source)
		}
		if !path.IsAbs(f.Path) {
			return nil, fmt.Errorf("extra file %s: image path %q must be absolute", f.Source, f.Path)
		}
		entries = append(entries, layer.Entry{Path: f.Path, Kind: layer.File, Mode: f.Mode, Source: f.Source})
	}
	return entries, nil
}

func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
