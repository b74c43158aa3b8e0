package resolve

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Input is one file to resolve.
type Input struct {
	Name string // as the user wrote it, for messages; "-" for stdin
	Data []byte
}

// ErrNoInput is returned when no -f was given.
var ErrNoInput = errors.New("no input: name files or directories with -f, or -f - for stdin")

// ReadInputs reads what -f names, in order: "-" is stdin, a file is read
// whatever its name, a directory gives its .yaml, .yml and .json files in
// lexical order (subdirectories too when recursive). Relative names are
// taken from dir.
func ReadInputs(names []string, recursive bool, dir string, stdin io.Reader) ([]Input, error) {
	if len(names) == 0 {
		return nil, ErrNoInput
	}
	var inputs []Input
	for _, n := range names {
		if n == "-" {
			if stdin == nil {
				return nil, errors.New("-f -: no standard input")
			}
			data, err := io.ReadAll(stdin)
			if err != nil {
				return nil, fmt.Errorf("reading standard input: %w", err)
			}
			inputs = append(inputs, Input{Name: "-", Data: data})
			continue
		}
		root := n
		if !filepath.IsAbs(root) && dir != "" {
			root = filepath.Join(dir, n)
		}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if p != root && !recursive {
					return filepath.SkipDir
				}
				return nil
			}
			if p != root {
				switch filepath.Ext(p) {
				case ".yaml", ".yml", ".json":
				default:
					return nil
				}
			}
			rel, _ := filepath.Rel(root, p)
			data, err := os.ReadFile(p)
			if err != nil {
				if p != root {
					// Name the file in the directory: "-f DIR" alone
					// does not say which one failed.
					return fmt.Errorf("%s: %w", filepath.Join(n, rel), unwrapPath(err))
				}
				return err
			}
			inputs = append(inputs, Input{Name: filepath.Join(n, rel), Data: data})
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("-f %s: %w", n, unwrapPath(err))
		}
	}
	return inputs, nil
}

// unwrapPath drops the path a *fs.PathError repeats.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
