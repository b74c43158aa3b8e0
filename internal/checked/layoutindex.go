package checked

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// LayoutIndex reads dir/index.json, an OCI image layout's index. It names
// no digest, so nothing checks its bytes: it is only read bounded, at most
// MaxJSON bytes, and what it points at is checked by Image and Index.
func LayoutIndex(dir string) (*v1.IndexManifest, error) {
	raw, err := LayoutIndexBytes(dir)
	if err != nil {
		return nil, err
	}
	im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%s is not an image index: %w", filepath.Join(dir, "index.json"), err)
	}
	return im, nil
}

// LayoutIndexBytes reads dir/index.json's bytes, at most MaxJSON of them.
// A missing file's error satisfies os.IsNotExist.
func LayoutIndexBytes(dir string) ([]byte, error) {
	path := filepath.Join(dir, "index.json")
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, MaxJSON+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(raw) > MaxJSON {
		return nil, fmt.Errorf("%s: %w of %d bytes: not an image layout's index", path, ErrTooLarge, MaxJSON)
	}
	return raw, nil
}
