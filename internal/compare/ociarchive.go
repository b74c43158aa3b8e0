package compare

import (
	"errors"
)

// openOCIArchive reads a tar of an OCI layout (gzip-compressed or not)
// in place, through an archive index (see archive), and everything in it
// through package checked.
func openOCIArchive(file, nm string, opt Options, m *meter) (*Source, error) {
	a, err := openArchive(file, opt.TempDir, m)
	if err != nil {
		return nil, err
	}
	if !a.has("index.json") {
		a.Close()
		return nil, errors.New("not an OCI archive (no index.json inside)")
	}
	raw, err := a.readJSON("index.json")
	if err != nil {
		a.Close()
		return nil, err
	}
	s, err := openIndex(a, raw, "", nm, KindOCIArchive, opt, m)
	if err != nil {
		a.Close()
		return nil, err
	}
	s.cleanup = a.Close
	return s, nil
}
