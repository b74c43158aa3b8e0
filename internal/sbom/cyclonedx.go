package sbom

import (
	"crypto/sha256"
	"fmt"
	"strings"
)

// The subset of CycloneDX 1.5 (JSON) that kiln writes.
// https://cyclonedx.org/docs/1.5/json/

// BOM is a CycloneDX document.
type BOM struct {
	BOMFormat    string       `json:"bomFormat"`
	SpecVersion  string       `json:"specVersion"`
	SerialNumber string       `json:"serialNumber"`
	Version      int          `json:"version"`
	Metadata     Metadata     `json:"metadata"`
	Components   []Component  `json:"components"`
	Dependencies []Dependency `json:"dependencies"`
}

// Metadata says when and by what the BOM was made, and what it describes.
type Metadata struct {
	Timestamp string    `json:"timestamp"`
	Tools     Tools     `json:"tools"`
	Component Component `json:"component"`
}

// Tools made the BOM (1.5's object form).
type Tools struct {
	Components []Component `json:"components"`
}

// Component is one part of what the BOM describes.
type Component struct {
	Type        string        `json:"type"`
	BOMRef      string        `json:"bom-ref,omitempty"`
	Supplier    *Organization `json:"supplier,omitempty"`
	Name        string        `json:"name"`
	Version     string        `json:"version,omitempty"`
	Description string        `json:"description,omitempty"`
	Hashes      []Hash        `json:"hashes,omitempty"`
	Licenses    []License     `json:"licenses,omitempty"`
	PURL        string        `json:"purl,omitempty"`
	ExternalRef []Reference   `json:"externalReferences,omitempty"`
}

// Organization is a supplier.
type Organization struct {
	Name string `json:"name"`
}

// Hash is a digest of a component.
type Hash struct {
	Alg     string `json:"alg"`
	Content string `json:"content"`
}

// License is a component's license as an SPDX expression.
type License struct {
	Expression string `json:"expression"`
}

// Reference points at a component elsewhere.
type Reference struct {
	Type string `json:"type"`
	URL  string `json:"url"`
}

// Dependency lists what the component Ref depends on or contains.
type Dependency struct {
	Ref       string   `json:"ref"`
	DependsOn []string `json:"dependsOn"`
}

// componentTypes maps SPDX primary purposes to CycloneDX component types.
var componentTypes = map[string]string{"CONTAINER": "container", "APPLICATION": "application", "LIBRARY": "library"}

// CycloneDX expresses the SPDX document doc as a CycloneDX 1.5 BOM: the
// same packages as components (bom-ref is the SPDXID) and the same
// relationships as dependencies, so that the two kinds never disagree.
// The described package is the metadata's component; the serial number
// is derived from the document's namespace, so that it is reproducible.
func CycloneDX(doc *Document) *BOM {
	bom := &BOM{
		BOMFormat: "CycloneDX", SpecVersion: "1.5", Version: 1,
		SerialNumber: "urn:uuid:" + nameUUID(doc.DocumentNamespace),
		Metadata:     Metadata{Timestamp: doc.CreationInfo.Created},
		Components:   []Component{},
		Dependencies: []Dependency{},
	}
	for _, c := range doc.CreationInfo.Creators {
		tool, ok := strings.CutPrefix(c, "Tool: ")
		if !ok {
			continue
		}
		name, version, _ := strings.Cut(tool, "-")
		bom.Metadata.Tools.Components = append(bom.Metadata.Tools.Components, Component{Type: "application", Name: name, Version: version})
	}
	described := map[string]bool{}
	for _, id := range doc.DocumentDescribes {
		described[id] = true
	}
	for _, p := range doc.Packages {
		c := component(p)
		if described[p.SPDXID] && bom.Metadata.Component.Name == "" {
			bom.Metadata.Component = c
			continue
		}
		bom.Components = append(bom.Components, c)
	}
	deps := map[string]int{} // ref → index in Dependencies
	for _, r := range doc.Relationships {
		switch r.Type {
		case "CONTAINS", "DEPENDS_ON", "DESCENDANT_OF":
		default:
			continue
		}
		i, ok := deps[r.Element]
		if !ok {
			i = len(bom.Dependencies)
			deps[r.Element] = i
			bom.Dependencies = append(bom.Dependencies, Dependency{Ref: r.Element})
		}
		bom.Dependencies[i].DependsOn = append(bom.Dependencies[i].DependsOn, r.Related)
	}
	return bom
}

func component(p Package) Component {
	c := Component{BOMRef: p.SPDXID, Name: p.Name, Version: p.VersionInfo, Description: p.Comment}
	for _, r := range p.ExternalRefs {
		if r.Category == "PACKAGE-MANAGER" && r.Type == "purl" {
			c.PURL = r.Locator
		}
	}
	c.Type = componentTypes[p.PrimaryPurpose]
	switch {
	case c.Type != "":
	case c.PURL != "":
		c.Type = "library" // the Go toolchain and standard library
	default:
		c.Type = "data" // the base's CA bundle and time zone database
	}
	if s, ok := strings.CutPrefix(p.Supplier, "Organization: "); ok {
		c.Supplier = &Organization{Name: s}
	}
	for _, h := range p.Checksums {
		if h.Algorithm == "SHA256" {
			c.Hashes = append(c.Hashes, Hash{Alg: "SHA-256", Content: h.Value})
		}
	}
	if l := p.LicenseDeclared; l != "" && l != noAssertion {
		c.Licenses = []License{{Expression: l}}
	}
	if u := p.DownloadLocation; strings.HasPrefix(u, "https://") {
		c.ExternalRef = []Reference{{Type: "distribution", URL: u}}
	}
	return c
}

// nameUUID is a UUID (version 5 layout, SHA-256 in place of SHA-1) named
// by s: the same s always gives the same UUID.
func nameUUID(s string) string {
	h := sha256.Sum256([]byte("kiln cyclonedx serial " + s))
	h[6] = h[6]&0x0f | 0x50
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}
