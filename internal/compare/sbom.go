package compare

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kilnbuild/kiln/internal/sbom"
	"github.com/kilnbuild/kiln/internal/sign"
)

// readSBOM takes the image's package list from an SPDX SBOM about the
// image or the index it came from, when there is one: first an SBOM
// attestation (cosign's sha256-<hex>.att tag), else the unsigned SBOM that
// kiln build and ko attach by default (sha256-<hex>.sbom). Neither is
// vouched for here: an attestation's DSSE signature is NOT checked
// (`kiln verify --attestations` does that), and an unsigned SBOM has none.
func readSBOM(ctx context.Context, src *Source, img *Image) error {
	if src.attached == nil {
		return nil
	}
	for _, d := range []v1.Hash{src.Digest, src.IndexDigest} {
		if d.Hex == "" {
			continue
		}
		doc, info, err := attestedSBOM(ctx, src, d)
		if err == nil && doc == nil {
			doc, info, err = unsignedSBOM(ctx, src, d, img)
		}
		if err != nil {
			return err
		}
		if doc == nil {
			continue
		}
		var pkgs []Package
		for _, p := range doc.Packages {
			if p.PrimaryPurpose == "CONTAINER" {
				continue // the image itself
			}
			pkgs = append(pkgs, Package{Name: p.Name, Version: p.VersionInfo, Type: "spdx", Location: info.Tag})
		}
		info.Packages = len(pkgs)
		img.SBOM = info
		img.Packages = dedupe(pkgs)
		img.PackageSource = PackagesFromSBOM
		return nil
	}
	return nil
}

// attestedSBOM reads the SPDX statement among the attestations of d;
// nil when there is none.
func attestedSBOM(ctx context.Context, src *Source, d v1.Hash) (*spdxDocument, *SBOM, error) {
	tag := sign.AttestationTag(d)
	att, err := src.attached(ctx, tag)
	if errors.Is(err, sign.ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading the attestations: %v", err)
	}
	doc, err := spdxFromAttestation(att)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the attestations (%s): %v", tag, err)
	}
	if doc == nil {
		return nil, nil, nil
	}
	return doc, &SBOM{
		Tag:         tag,
		Subject:     d.String(),
		SPDXVersion: doc.SPDXVersion,
		Form:        SBOMAttestation,
		Note:        "read from the attestation without checking its signature (use kiln verify --attestations)",
	}, nil
}

// unsignedSBOM reads the SBOM attached to d at sha256-<hex>.sbom, as
// kiln build, ko and cosign attach it: one layer, the document as is. nil
// when there is none; an SBOM in another format than SPDX gets a note.
func unsignedSBOM(ctx context.Context, src *Source, d v1.Hash, img *Image) (*spdxDocument, *SBOM, error) {
	tag := sbom.Tag(d)
	att, err := src.attached(ctx, tag)
	if errors.Is(err, sign.ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading the SBOM %s: %v", tag, err)
	}
	m, err := att.Manifest()
	if err != nil {
		return nil, nil, fmt.Errorf("reading the SBOM %s: %v", tag, err)
	}
	if len(m.Layers) != 1 {
		return nil, nil, fmt.Errorf("the SBOM %s has %d layers, want 1", tag, len(m.Layers))
	}
	if mt := m.Layers[0].MediaType; mt != sbom.KindSPDX.MediaType() {
		img.Notes = append(img.Notes, fmt.Sprintf("an SBOM in %s at %s was not read: compare reads SPDX", mt, tag))
		return nil, nil, nil
	}
	if size := m.Layers[0].Size; size > maxAttestation {
		return nil, nil, fmt.Errorf("the SBOM %s is %s, more than the %s read", tag, formatBytes(size), formatBytes(maxAttestation))
	}
	layers, err := att.Layers()
	if err != nil {
		return nil, nil, fmt.Errorf("reading the SBOM %s: %v", tag, err)
	}
	raw, err := readAll(layers[0])
	if err != nil {
		return nil, nil, fmt.Errorf("reading the SBOM %s: %v", tag, err)
	}
	var doc spdxDocument
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, nil, fmt.Errorf("the SBOM %s is not SPDX JSON: %v", tag, err)
	}
	return &doc, &SBOM{
		Tag:         tag,
		Subject:     d.String(),
		SPDXVersion: doc.SPDXVersion,
		Form:        SBOMUnsigned,
		Note:        "the unsigned SBOM attached to the image (kiln build's default, as ko's): nothing vouches for it",
	}, nil
}

// readAll reads a small layer (an SBOM, an attestation) whole, at most
// maxAttestation bytes; to its end, so that its digest is checked.
func readAll(l v1.Layer) ([]byte, error) {
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, maxAttestation))
}

// spdxDocument is the part of an SPDX 2.x JSON document read here; other
// tools' SBOMs decode into it as well as kiln's own (sbom.Document).
type spdxDocument struct {
	SPDXVersion string `json:"spdxVersion"`
	Packages    []struct {
		Name           string `json:"name"`
		VersionInfo    string `json:"versionInfo"`
		PrimaryPurpose string `json:"primaryPackagePurpose"`
	} `json:"packages"`
}

// spdxFromAttestation decodes the first SPDX statement among an .att
// image's DSSE envelopes; nil when there is none.
func spdxFromAttestation(att v1.Image) (*spdxDocument, error) {
	m, err := att.Manifest()
	if err != nil {
		return nil, err
	}
	layers, err := att.Layers()
	if err != nil {
		return nil, err
	}
	for i, l := range layers {
		if i < len(m.Layers) {
			if pt, ok := m.Layers[i].Annotations[sign.PredicateTypeAnnotation]; ok && pt != sbom.PredicateType {
				continue
			}
		}
		raw, err := readAll(l)
		if err != nil {
			return nil, err
		}
		var env struct {
			PayloadType string `json:"payloadType"`
			Payload     string `json:"payload"`
		}
		if err := json.Unmarshal(raw, &env); err != nil || env.Payload == "" {
			continue
		}
		body, err := base64.StdEncoding.DecodeString(env.Payload)
		if err != nil {
			continue
		}
		var st sign.Statement
		if err := json.Unmarshal(body, &st); err != nil || st.PredicateType != sbom.PredicateType {
			continue
		}
		var doc spdxDocument
		if err := json.Unmarshal(st.Predicate, &doc); err != nil {
			return nil, fmt.Errorf("the SPDX predicate does not decode: %v", err)
		}
		return &doc, nil
	}
	return nil, nil
}
