package config

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Config is the content of a .ko.yaml file.
type Config struct {
	Path string `yaml:"-"` // file it was read from; "" when there is none
	Dir  string `yaml:"-"` // directory of Path (relative paths in the file are relative to it); "" when none

	DefaultBaseImage   string            `yaml:"defaultBaseImage"`
	BaseImageOverrides map[string]string `yaml:"baseImageOverrides"`
	DefaultPlatforms   []string          `yaml:"defaultPlatforms"`
	// DefaultEnv, DefaultFlags, DefaultLdflags and each build's Env, Flags
	// and Ldflags are kept as written; what reaches go build is decided by
	// gobuild's rule (no cgo, no -toolexec, an allow-list of variables).
	DefaultEnv     []string `yaml:"defaultEnv"`
	DefaultFlags   []string `yaml:"defaultFlags"`
	DefaultLdflags []string `yaml:"defaultLdflags"`
	Builds         []Build  `yaml:"builds"`
	Kiln           Kiln     `yaml:"kiln"`
}

// Build is one entry of ko's builds: list.
type Build struct {
	ID                string   `yaml:"id"`
	Dir               string   `yaml:"dir"`
	Main              string   `yaml:"main"`
	Env               []string `yaml:"env"`
	Flags             []string `yaml:"flags"`
	Ldflags           []string `yaml:"ldflags"`
	LinuxCapabilities []string `yaml:"linux_capabilities"` // see ParseCapabilities
}

// Kiln holds kiln's additions; ko ignores this key.
type Kiln struct {
	Defaults Image            `yaml:"defaults"`
	Builds   map[string]Image `yaml:"builds"` // keyed by a builds[].id or by an import path
}

// Image is what kiln adds to the image config, per build or as defaults.
type Image struct {
	Env              []string          `yaml:"env"` // KEY=VALUE
	Labels           map[string]string `yaml:"labels"`
	Annotations      map[string]string `yaml:"annotations"`
	Args             []string          `yaml:"args"` // image Cmd after the entrypoint
	User             string            `yaml:"user"`
	Workdir          string            `yaml:"workdir"`
	Files            []File            `yaml:"files"`
	Compression      string            `yaml:"compression"`      // "", "gzip", "zstd", "none" or "auto"
	CompressionLevel int               `yaml:"compressionLevel"` // 0 = the algorithm's default
	Sign             bool              `yaml:"sign"`             // reserved for the signing feature
	Key              string            `yaml:"key"`              // reserved for the signing feature
}

// File is a file from disk to add to the image.
type File struct {
	Source string `yaml:"source"` // path on disk, relative to Config.Dir
	Path   string `yaml:"path"`   // absolute path in the image
	Mode   string `yaml:"mode"`   // octal, e.g. "0644"; "" means 0644
}

// Load reads and parses the file at path, filling Path and Dir (absolute).
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	c.Path, c.Dir = abs, filepath.Dir(abs)
	return c, nil
}

// Find returns the config file to use. configPath is the value of
// KO_CONFIG_PATH as given by the caller: a file, or a directory holding
// .ko.yaml. When it is empty, Find looks for .ko.yaml (or, as ko also reads
// it, .ko.yml) in dir, and returns "" and a nil error when there is none.
// A KO_CONFIG_PATH that does not exist is an error.
func Find(configPath, dir string) (string, error) {
	if configPath != "" {
		fi, err := os.Stat(configPath)
		if err != nil {
			return "", &Error{File: configPath, Err: err,
				Msg: fmt.Sprintf("KO_CONFIG_PATH: %v; point it at a .ko.yaml file or a directory holding one", statProblem(err))}
		}
		if fi.IsDir() {
			p := filepath.Join(configPath, ".ko.yaml")
			fi, err = os.Stat(p)
			if err != nil {
				return "", &Error{File: p, Err: err,
					Msg: fmt.Sprintf("KO_CONFIG_PATH is a directory but its .ko.yaml: %v; add the file or point KO_CONFIG_PATH at the config file", statProblem(err))}
			}
			configPath = p
		}
		if !fi.Mode().IsRegular() {
			return "", &Error{File: configPath, Msg: "KO_CONFIG_PATH: not a regular file; point it at a .ko.yaml file or a directory holding one"}
		}
		return configPath, nil
	}
	if dir == "" {
		dir = "."
	}
	for _, name := range []string{".ko.yaml", ".ko.yml"} {
		p := filepath.Join(dir, name)
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", &Error{File: p, Err: err, Msg: statProblem(err)}
		}
		if !fi.Mode().IsRegular() {
			return "", &Error{File: p, Msg: "not a regular file; remove it or set KO_CONFIG_PATH to the config file"}
		}
		return p, nil
	}
	return "", nil
}

// statProblem describes a failed os.Stat without repeating the path.
func statProblem(err error) string {
	if errors.Is(err, fs.ErrNotExist) {
		return "no such file or directory"
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// ImageFor merges kiln.defaults with kiln.builds[id] and
// kiln.builds[importPath], in that order, the later being the more specific:
// env and files are appended; args is the most specific non-empty list;
// labels and annotations are merged, the more specific value winning; user,
// workdir, compression, compressionLevel and key are taken from the most
// specific entry that sets them; sign is true when any entry sets it.
// The result shares no slices or maps with c.
func (c *Config) ImageFor(id, importPath string) Image {
	layers := []Image{c.Kiln.Defaults}
	if img, ok := c.Kiln.Builds[id]; ok && id != "" {
		layers = append(layers, img)
	}
	if img, ok := c.Kiln.Builds[importPath]; ok && importPath != "" && importPath != id {
		layers = append(layers, img)
	}

	var out Image
	for _, img := range layers {
		out.Env = append(out.Env, img.Env...)
		out.Files = append(out.Files, img.Files...)
		if len(img.Args) > 0 {
			out.Args = append([]string(nil), img.Args...)
		}
		out.Labels = mergeMap(out.Labels, img.Labels)
		out.Annotations = mergeMap(out.Annotations, img.Annotations)
		out.User = override(out.User, img.User)
		out.Workdir = override(out.Workdir, img.Workdir)
		out.Compression = override(out.Compression, img.Compression)
		out.CompressionLevel = override(out.CompressionLevel, img.CompressionLevel)
		out.Key = override(out.Key, img.Key)
		out.Sign = out.Sign || img.Sign
	}
	return out
}

func mergeMap(dst, src map[string]string) map[string]string {
	if len(src) == 0 {
		return dst
	}
	if dst == nil {
		dst = make(map[string]string, len(src))
	}
	maps.Copy(dst, src)
	return dst
}

func override[T comparable](v, more T) T {
	var zero T
	if more != zero {
		return more
	}
	return v
}

// FileMode parses File.Mode: octal permission bits up to 07777, such as
// "0644", "755" or "0o4755"; "" means 0644. The setuid, setgid and sticky
// bits become fs.ModeSetuid, fs.ModeSetgid and fs.ModeSticky.
func (f File) FileMode() (fs.FileMode, error) {
	if f.Mode == "" {
		return 0o644, nil
	}
	n, err := strconv.ParseUint(strings.TrimPrefix(f.Mode, "0o"), 8, 32)
	if err != nil || n > 0o7777 {
		return 0, fmt.Errorf("file mode %q is not an octal mode from 0000 to 07777; write it like \"0644\"", f.Mode)
	}
	m := fs.FileMode(n & 0o777)
	if n&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if n&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if n&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m, nil
}
