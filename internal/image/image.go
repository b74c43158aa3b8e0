package image

import (
	"fmt"
	"maps"
	"path"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Paths ko uses, kept so images and manifests move between the two tools.
const (
	AppDir     = "/ko-app"
	KoDataPath = "/var/run/ko"
)

// Standard annotation keys (OCI image spec).
const (
	AnnotationSource     = "org.opencontainers.image.source"
	AnnotationRevision   = "org.opencontainers.image.revision"
	AnnotationBaseName   = "org.opencontainers.image.base.name"
	AnnotationBaseDigest = "org.opencontainers.image.base.digest"
	AnnotationCreated    = "org.opencontainers.image.created"
)

// Layer is a layer to append with the history line that explains it.
type Layer struct {
	Layer     v1.Layer
	CreatedBy string
	Comment   string
}

// Config is what the image's config and manifest get on top of the base.
type Config struct {
	Name string // binary name; the entrypoint is /ko-app/<Name>
	// Entrypoint replaces /ko-app/<Name> as the entrypoint when set: a
	// debugger that starts the program (kiln build --debug).
	Entrypoint  []string
	Env         []string          // KEY=VALUE, applied after PATH and KO_DATA_PATH
	Labels      map[string]string // merged over the base's labels
	Annotations map[string]string // manifest annotations
	Args        []string          // the image's Cmd
	User        string            // "" keeps the base's user
	Workdir     string            // "" keeps the base's working directory
	Created     time.Time
	Platform    v1.Platform
}

// Assemble appends layers to base and sets the config: entrypoint, env,
// labels, user, platform, creation time, history, OCI media types and
// annotations. The result is lazy: nothing is computed until it is read.
func Assemble(base v1.Image, layers []Layer, cfg Config) (v1.Image, error) {
	adds := make([]mutate.Addendum, 0, len(layers))
	for _, l := range layers {
		adds = append(adds, mutate.Addendum{
			Layer: l.Layer,
			History: v1.History{
				Created:   v1.Time{Time: cfg.Created},
				CreatedBy: l.CreatedBy,
				Comment:   l.Comment,
			},
		})
	}
	img, err := mutate.Append(base, adds...)
	if err != nil {
		return nil, fmt.Errorf("appending layers: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading base config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: cfg.Created}
	cf.OS, cf.Architecture, cf.Variant = cfg.Platform.OS, cfg.Platform.Architecture, cfg.Platform.Variant
	cf.OSVersion, cf.OSFeatures = cfg.Platform.OSVersion, cfg.Platform.OSFeatures
	cf.Author = ""
	cf.Container, cf.DockerVersion = "", ""

	c := &cf.Config
	c.Entrypoint = []string{path.Join(AppDir, cfg.Name)}
	if len(cfg.Entrypoint) > 0 {
		c.Entrypoint = cfg.Entrypoint
	}
	c.Cmd = cfg.Args
	c.Env = setEnv(c.Env, "PATH", appendPath(envValue(c.Env, "PATH"), AppDir))
	c.Env = setEnv(c.Env, "KO_DATA_PATH", KoDataPath)
	for _, kv := range cfg.Env {
		k, v, _ := strings.Cut(kv, "=")
		c.Env = setEnv(c.Env, k, v)
	}
	if cfg.User != "" {
		c.User = cfg.User
	}
	if cfg.Workdir != "" {
		c.WorkingDir = cfg.Workdir
	}
	if len(cfg.Labels) > 0 {
		labels := maps.Clone(c.Labels)
		if labels == nil {
			labels = map[string]string{}
		}
		maps.Copy(labels, cfg.Labels)
		c.Labels = labels
	}

	img, err = ociLayers(img)
	if err != nil {
		return nil, err
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("setting config: %w", err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	if len(cfg.Annotations) > 0 {
		img = mutate.Annotations(img, cfg.Annotations).(v1.Image)
	}
	return img, nil
}

// ociLayerTypes maps Docker layer media types to their OCI equivalents (the
// bytes are the same).
var ociLayerTypes = map[types.MediaType]types.MediaType{
	types.DockerLayer:             types.OCILayer,
	types.DockerUncompressedLayer: types.OCIUncompressedLayer,
}

// ociLayers relists img's layers under OCI media types. The result gets an
// OCI manifest, and an OCI manifest should not name Docker layer types (as
// it would for a Docker base); the layers' bytes and digests do not change,
// and layers that can be mounted from the base's repository still can be.
func ociLayers(img v1.Image) (v1.Image, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("reading manifest: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("reading layers: %w", err)
	}
	if len(layers) != len(m.Layers) {
		return nil, fmt.Errorf("base image lists %d layers in its manifest and %d in its config", len(m.Layers), len(layers))
	}
	adds := make([]mutate.Addendum, len(layers))
	changed := false
	for i, l := range layers {
		d := m.Layers[i]
		if oci, ok := ociLayerTypes[d.MediaType]; ok {
			changed = true
			d.MediaType = oci
			if ml, ok := l.(*remote.MountableLayer); ok {
				l = &remote.MountableLayer{Layer: &typedLayer{Layer: ml.Layer, mediaType: oci}, Reference: ml.Reference}
			} else {
				l = &typedLayer{Layer: l, mediaType: oci}
			}
		}
		adds[i] = mutate.Addendum{Layer: l, MediaType: d.MediaType, URLs: d.URLs, Annotations: d.Annotations}
	}
	if !changed {
		return img, nil
	}
	out, err := mutate.Append(empty.Image, adds...)
	if err != nil {
		return nil, fmt.Errorf("relisting layers: %w", err)
	}
	if len(m.Annotations) > 0 {
		out = mutate.Annotations(out, m.Annotations).(v1.Image)
	}
	return out, nil
}

// typedLayer is a layer under another media type.
type typedLayer struct {
	v1.Layer
	mediaType types.MediaType
}

func (l *typedLayer) MediaType() (types.MediaType, error) { return l.mediaType, nil }

// Platformed is one platform's image for an index.
type Platformed struct {
	Image    v1.Image
	Platform v1.Platform
}

// Index makes an OCI image index of per-platform images.
func Index(images []Platformed, annotations map[string]string) v1.ImageIndex {
	adds := make([]mutate.IndexAddendum, 0, len(images))
	for _, p := range images {
		pl := p.Platform
		adds = append(adds, mutate.IndexAddendum{
			Add:        p.Image,
			Descriptor: v1.Descriptor{MediaType: types.OCIManifestSchema1, Platform: &pl},
		})
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
	if len(annotations) > 0 {
		idx = mutate.Annotations(idx, annotations).(v1.ImageIndex)
	}
	return idx
}

func envValue(env []string, key string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// setEnv replaces key's entry in place, or appends it.
func setEnv(env []string, key, value string) []string {
	out := make([]string, 0, len(env)+1)
	found := false
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k == key {
			if !found {
				out = append(out, key+"="+value)
				found = true
			}
			continue
		}
		out = append(out, kv)
	}
	if !found {
		out = append(out, key+"="+value)
	}
	return out
}

func appendPath(pathVar, dir string) string {
	if pathVar == "" {
		return dir
	}
	for _, p := range strings.Split(pathVar, ":") {
		if p == dir {
			return pathVar
		}
	}
	return pathVar + ":" + dir
}
