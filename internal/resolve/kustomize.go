package resolve

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// ErrNoKustomization is returned by Kustomize for a directory that holds no
// kustomization file.
var ErrNoKustomization = errors.New("no kustomization.yaml, kustomization.yml or Kustomization in it: -k takes a kustomization directory; use -f for plain YAML")

// Kustomize runs kustomize in-process on the kustomization directory dir
// (relative names are taken from base), as kustomize build and kubectl -k
// do: resources are ordered as the kustomization's sortOptions say, or in
// kustomize's legacy order; only kustomize's built-in generators and
// transformers run (no plugins, no Helm); files are loaded only from within
// the kustomization's root. The output is YAML kustomize serialized: it has
// none of the inputs' comments or formatting to keep.
func Kustomize(dir, base string) (Input, error) {
	name := "-k " + dir
	root := dir
	if !filepath.IsAbs(root) && base != "" {
		root = filepath.Join(base, dir)
	}
	fi, err := os.Stat(root)
	if err != nil {
		return Input{}, fmt.Errorf("%s: %w", name, unwrapPath(err))
	}
	if !fi.IsDir() {
		return Input{}, fmt.Errorf("%s: not a directory: -k takes a kustomization directory; use -f for a file", name)
	}
	found := false
	for _, f := range konfig.RecognizedKustomizationFileNames() {
		if _, err := os.Stat(filepath.Join(root, f)); err == nil {
			found = true
			break
		}
	}
	if !found {
		return Input{}, fmt.Errorf("%s: %w", name, ErrNoKustomization)
	}
	opts := krusty.MakeDefaultOptions()
	opts.Reorder = krusty.ReorderOptionUnspecified
	m, err := krusty.MakeKustomizer(opts).Run(filesys.MakeFsOnDisk(), root)
	if err != nil {
		return Input{}, fmt.Errorf("%s: kustomize: %w", name, err)
	}
	data, err := m.AsYaml()
	if err != nil {
		return Input{}, fmt.Errorf("%s: kustomize: serializing: %w", name, err)
	}
	return Input{Name: name, Data: data}, nil
}
