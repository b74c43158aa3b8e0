package compare

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	specs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kilnbuild/kiln/internal/checked"
	"github.com/kilnbuild/kiln/internal/sign"
)

// openLayout finds nm in the OCI layout dir: a ref name as index.json
// records it ("REPO:TAG" as kiln writes, or a bare "TAG" as other tools
// do), a tag alone, REPO@DIGEST, or nothing when the layout holds one image.
// where ends messages that would not otherwise say which layout.
// index.json is read within the JSON budget; everything it names is read
// through package checked.
func openLayout(dir, where, nm, kind string, opt Options, m *meter) (*Source, error) {
	f, err := os.Open(filepath.Join(dir, "index.json"))
	if err != nil {
		return nil, fmt.Errorf("not an OCI image layout (no index.json)%s", where)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > m.lim.JSON {
		return nil, fmt.Errorf("%v%s", jsonTooLarge("index.json", st.Size(), m.lim.JSON), where)
	}
	raw, err := io.ReadAll(io.LimitReader(f, m.lim.JSON+1))
	if err != nil {
		return nil, fmt.Errorf("reading the layout's index.json%s: %v", where, err)
	}
	if int64(len(raw)) > m.lim.JSON {
		return nil, fmt.Errorf("%v%s", jsonTooLarge("index.json", int64(len(raw)), m.lim.JSON), where)
	}
	return openIndex(layout.Path(dir), raw, where, nm, kind, opt, m)
}

// openIndex picks nm among the descriptors of an OCI layout's index.json
// (raw) and reads it from b through package checked.
func openIndex(b checked.Blobs, raw []byte, where, nm, kind string, opt Options, m *meter) (*Source, error) {
	im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("reading the layout's index.json%s: %v", where, err)
	}
	desc, err := findInIndex(im.Manifests, nm, kind == KindStore)
	if err != nil {
		return nil, fmt.Errorf("%v%s", err, where)
	}
	s := &Source{Kind: kind, attached: func(_ context.Context, tag string) (v1.Image, error) {
		for i := len(im.Manifests) - 1; i >= 0; i-- {
			rn := im.Manifests[i].Annotations[specs.AnnotationRefName]
			if rn == tag || strings.HasSuffix(rn, ":"+tag) {
				return checked.Image(b, im.Manifests[i])
			}
		}
		return nil, sign.ErrNotFound
	}}
	if desc.Size > m.lim.JSON {
		return nil, jsonTooLarge("the manifest "+desc.Digest.String(), desc.Size, m.lim.JSON)
	}
	if desc.MediaType.IsIndex() {
		child, err := checked.Index(b, desc)
		if err != nil {
			return nil, err
		}
		s.IndexDigest = desc.Digest
		s.Image, s.Digest, err = pickChild(child, opt.Platform, m)
		return s, err
	}
	s.Digest = desc.Digest
	s.Image, err = checked.Image(b, desc)
	return s, err
}

// findInIndex picks the descriptor nm names among an index.json's.
func findInIndex(ds []v1.Descriptor, nm string, inStore bool) (v1.Descriptor, error) {
	refName := func(d v1.Descriptor) string { return d.Annotations[specs.AnnotationRefName] }
	if r, dg, ok := strings.Cut(nm, "@"); ok {
		h, err := v1.NewHash(dg)
		if err != nil {
			return v1.Descriptor{}, fmt.Errorf("bad digest %q: %v", dg, err)
		}
		for _, d := range ds {
			if d.Digest == h && (r == "" || !inStore || strings.HasPrefix(refName(d), r+":")) {
				return d, nil
			}
		}
		return v1.Descriptor{}, fmt.Errorf("no image %s", nm)
	}
	var names []string
	var images []v1.Descriptor
	for _, d := range ds {
		rn := refName(d)
		if isSignatureTag(rn) {
			continue
		}
		images = append(images, d)
		if rn != "" {
			names = append(names, rn)
		}
	}
	if nm == "" {
		if len(images) == 1 {
			return images[0], nil
		}
		if len(images) == 0 {
			return v1.Descriptor{}, errors.New("no image")
		}
		return v1.Descriptor{}, fmt.Errorf("%d images (%s): name one after a colon", len(images), listNames(names))
	}
	want := []string{nm}
	if inStore {
		if i := strings.LastIndex(nm, ":"); i < strings.LastIndex(nm, "/") || i < 0 {
			want = []string{nm + ":latest"}
		}
	} else {
		want = append(want, nm+":latest")
	}
	for _, w := range want {
		for i := len(images) - 1; i >= 0; i-- {
			if refName(images[i]) == w {
				return images[i], nil
			}
		}
	}
	if !inStore && !strings.ContainsAny(nm, ":/") {
		var found []v1.Descriptor
		var foundNames []string
		for _, d := range images {
			if strings.HasSuffix(refName(d), ":"+nm) {
				found = append(found, d)
				foundNames = append(foundNames, refName(d))
			}
		}
		if len(found) == 1 {
			return found[0], nil
		}
		if len(found) > 1 {
			return v1.Descriptor{}, fmt.Errorf("tag %s is ambiguous (%s)", nm, listNames(foundNames))
		}
	}
	if len(names) == 0 {
		return v1.Descriptor{}, fmt.Errorf("no image named %s (no image has a name)", want[0])
	}
	return v1.Descriptor{}, fmt.Errorf("no image named %s (it has %s)", want[0], listNames(names))
}

func isSignatureTag(rn string) bool {
	t := rn[strings.LastIndex(rn, ":")+1:]
	return strings.HasPrefix(t, "sha256-") && (strings.HasSuffix(t, ".sig") || strings.HasSuffix(t, ".att") || strings.HasSuffix(t, ".sbom"))
}
