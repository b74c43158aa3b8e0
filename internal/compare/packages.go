package compare

import (
	"context"
	"debug/buildinfo"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kilnbuild/kiln/internal/sbom"
	"github.com/kilnbuild/kiln/internal/sign"
)

// goBuildInfo copies an ELF file (its first bytes already read) into tmp
// and reads its Go build info; nil when it is not a Go executable.
func goBuildInfo(tmp *os.File, head []byte, r io.Reader) (*GoBinary, error) {
	if err := tmp.Truncate(0); err != nil {
		return nil, err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	if _, err := tmp.Write(head); err != nil {
		return nil, err
	}
	if _, err := io.Copy(tmp, r); err != nil {
		return nil, err
	}
	bi, err := buildinfo.Read(tmp)
	if err != nil {
		return nil, nil // not Go, or stripped of its build info
	}
	gb := &GoBinary{GoVersion: bi.GoVersion, Package: bi.Path, Module: bi.Main.Path, Version: bi.Main.Version}
	for _, d := range bi.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		gb.Deps = append(gb.Deps, Package{Name: d.Path, Version: d.Version, Type: "go-module"})
	}
	return gb, nil
}

// The paths whose contents are read.
const (
	dpkgStatus    = "/var/lib/dpkg/status"
	dpkgStatusDir = "/var/lib/dpkg/status.d/" // distroless: one file per package
	apkInstalled  = "/lib/apk/db/installed"
	etcPasswd     = "/etc/passwd"
)

func isDatabase(p string) bool {
	return p == dpkgStatus || p == apkInstalled || p == etcPasswd ||
		(strings.HasPrefix(p, dpkgStatusDir) && !strings.HasSuffix(p, ".md5sums"))
}

// imagePackages lists the packages the image's own databases record:
// Debian's dpkg status (and distroless status.d), Alpine's apk database,
// and the Go build info of its executables, each once.
func imagePackages(root *node, gobins []GoBinary) []Package {
	var out []Package
	if e := fileEntry(root, dpkgStatus); e != nil {
		out = append(out, e.pkgs...)
	}
	if n := root.walk(dpkgStatusDir, false); n != nil {
		names := make([]string, 0, len(n.kids))
		for k := range n.kids {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			if e := n.kids[k].e; e != nil {
				out = append(out, e.pkgs...)
			}
		}
	}
	if e := fileEntry(root, apkInstalled); e != nil {
		out = append(out, e.pkgs...)
	}
	for _, gb := range gobins {
		if gb.Module != "" {
			out = append(out, Package{Name: gb.Module, Version: gb.Version, Type: "go-module", Location: gb.Path})
		}
		for _, d := range gb.Deps {
			d.Location = gb.Path
			out = append(out, d)
		}
		out = append(out, Package{Name: "go", Version: gb.GoVersion, Type: "go", Location: gb.Path})
	}
	return dedupe(out)
}

func dedupe(ps []Package) []Package {
	seen := map[string]bool{}
	var out []Package
	for _, p := range ps {
		k := p.Type + "\x00" + p.Name + "\x00" + p.Version
		if !seen[k] {
			seen[k] = true
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b Package) int {
		return strings.Compare(a.Type+"\x00"+a.Name+"\x00"+a.Version, b.Type+"\x00"+b.Name+"\x00"+b.Version)
	})
	return out
}

// readSBOM looks for an SPDX SBOM attestation (cosign's legacy
// sha256-<hex>.att tag) about the image or the index it came from, and if
// there is one, takes the package list from it. The DSSE envelope's
// signature is NOT checked here: `kiln verify --attestations` does that.
func readSBOM(ctx context.Context, src *Source, img *Image) error {
	if src.attestation == nil {
		return nil
	}
	for _, d := range []v1.Hash{src.Digest, src.IndexDigest} {
		if d.Hex == "" {
			continue
		}
		att, err := src.attestation(ctx, d)
		if errors.Is(err, sign.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("reading the attestations: %v", err)
		}
		doc, err := spdxFromAttestation(att)
		if err != nil {
			return fmt.Errorf("reading the attestations (%s): %v", sign.AttestationTag(d), err)
		}
		if doc == nil {
			continue
		}
		info := &SBOM{
			Tag:               sign.AttestationTag(d),
			Subject:           d.String(),
			SPDXVersion:       doc.SPDXVersion,
			SignatureVerified: false,
			Note:              "read from the attestation without checking its signature (use kiln verify --attestations)",
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
		rc, err := l.Compressed()
		if err != nil {
			return nil, err
		}
		raw, err := io.ReadAll(io.LimitReader(rc, maxAttestation))
		rc.Close()
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
