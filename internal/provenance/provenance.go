package provenance

import (
	"fmt"
	"time"
)

// SLSA provenance v1 (https://slsa.dev/spec/v1.0/provenance).
const (
	PredicateType = "https://slsa.dev/provenance/v1"
	// BuilderID names kiln as the builder.
	BuilderID = "https://github.com/kilnbuild/kiln"
	// BuildType says how to read ExternalParameters.
	BuildType = "https://github.com/kilnbuild/kiln/blob/main/docs/buildtype-go-image-v1.md"
)

// Predicate is a SLSA v1 provenance predicate.
type Predicate struct {
	BuildDefinition BuildDefinition `json:"buildDefinition"`
	RunDetails      RunDetails      `json:"runDetails"`
}

// BuildDefinition is what was built and from what.
type BuildDefinition struct {
	BuildType            string               `json:"buildType"`
	ExternalParameters   ExternalParameters   `json:"externalParameters"`
	InternalParameters   InternalParameters   `json:"internalParameters"`
	ResolvedDependencies []ResourceDescriptor `json:"resolvedDependencies"`
}

// ExternalParameters are the inputs a rebuild must repeat.
type ExternalParameters struct {
	Package          string   `json:"package"`   // import path
	Workdir          string   `json:"workdir"`   // kiln's directory, relative to the source root
	Platforms        []string `json:"platforms"` // os/arch[/variant]
	Flags            []string `json:"flags"`     // go build flags, expanded
	Ldflags          []string `json:"ldflags"`   // expanded
	Env              []string `json:"env"`       // names of the build environment entries from the config
	GOFLAGS          string   `json:"goflags,omitempty"`
	Base             string   `json:"base"`            // as configured
	SourceDateEpoch  int64    `json:"sourceDateEpoch"` // created time and mtimes
	Compression      string   `json:"compression"`
	CompressionLevel int      `json:"compressionLevel"`
	Config           string   `json:"config,omitempty"` // .ko.yaml path relative to the source root

	// KoDataDateEpoch is the kodata layer's mtime when it is not
	// SourceDateEpoch (ko's KO_DATA_DATE_EPOCH).
	KoDataDateEpoch *int64 `json:"koDataDateEpoch,omitempty"`

	// Debug says the image holds Delve and starts the program under it
	// (kiln build --debug).
	Debug bool `json:"debug,omitempty"`
}

// InternalParameters are builder details that do not change the result.
type InternalParameters struct {
	Jobs int `json:"jobs"`
}

// ResourceDescriptor is a resolved input.
type ResourceDescriptor struct {
	Name        string            `json:"name,omitempty"`
	URI         string            `json:"uri,omitempty"`
	Digest      map[string]string `json:"digest,omitempty"`
	Annotations map[string]any    `json:"annotations,omitempty"`
}

// RunDetails is who built it and when.
type RunDetails struct {
	Builder  Builder  `json:"builder"`
	Metadata Metadata `json:"metadata"`
}

// Builder identifies kiln.
type Builder struct {
	ID      string            `json:"id"`
	Version map[string]string `json:"version,omitempty"`
}

// Metadata times the run.
type Metadata struct {
	InvocationID string `json:"invocationId,omitempty"`
	StartedOn    string `json:"startedOn,omitempty"`
	FinishedOn   string `json:"finishedOn,omitempty"`
}

// Input is what the pipeline knows about a build.
type Input struct {
	Params      ExternalParameters
	Jobs        int
	SourceURL   string // git remote, credentials removed
	Commit      string
	Dirty       bool
	GoVersion   string
	BaseDigest  string
	KilnVersion string
	Started     time.Time
	Finished    time.Time
}

// Names of resolved dependencies, read back by the rebuild check.
const (
	DepSource = "source"
	DepGo     = "go"
	DepBase   = "base"
)

// New makes the predicate.
func New(in Input) Predicate {
	var deps []ResourceDescriptor
	if in.Commit != "" {
		uri := in.SourceURL
		if uri == "" {
			uri = "git+file:local"
		} else {
			uri = "git+" + uri
		}
		deps = append(deps, ResourceDescriptor{
			Name: DepSource, URI: uri,
			Digest:      map[string]string{"gitCommit": in.Commit},
			Annotations: map[string]any{"dirty": in.Dirty},
		})
	}
	if in.GoVersion != "" {
		deps = append(deps, ResourceDescriptor{Name: DepGo, URI: "https://go.dev/dl/" + in.GoVersion})
	}
	if in.BaseDigest != "" {
		alg, hex := splitDigest(in.BaseDigest)
		deps = append(deps, ResourceDescriptor{Name: DepBase, URI: in.Params.Base, Digest: map[string]string{alg: hex}})
	}
	return Predicate{
		BuildDefinition: BuildDefinition{
			BuildType:            BuildType,
			ExternalParameters:   in.Params,
			InternalParameters:   InternalParameters{Jobs: in.Jobs},
			ResolvedDependencies: deps,
		},
		RunDetails: RunDetails{
			Builder: Builder{ID: BuilderID, Version: map[string]string{"kiln": in.KilnVersion}},
			Metadata: Metadata{
				InvocationID: fmt.Sprintf("%s-%d", in.Params.Package, in.Started.UnixNano()),
				StartedOn:    in.Started.UTC().Format(time.RFC3339),
				FinishedOn:   in.Finished.UTC().Format(time.RFC3339),
			},
		},
	}
}

// Dependency returns the resolved dependency called name.
func (p Predicate) Dependency(name string) (ResourceDescriptor, bool) {
	for _, d := range p.BuildDefinition.ResolvedDependencies {
		if d.Name == name {
			return d, true
		}
	}
	return ResourceDescriptor{}, false
}

func splitDigest(d string) (alg, hex string) {
	for i := 0; i < len(d); i++ {
		if d[i] == ':' {
			return d[:i], d[i+1:]
		}
	}
	return "sha256", d
}
