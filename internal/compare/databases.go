package compare

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
)

// The databases are parsed as they stream past: memory holds one line (at
// most maxLine; a longer one is skipped) and what was found, and each
// package or user found is charged to the entries budget, so a database's
// size never becomes memory.
const (
	maxLine  = 64 << 10
	maxField = 256 // longer names and versions are cut
)

// eachLine calls fn with every line of r, without its newline; lines
// longer than maxLine are skipped.
func eachLine(r io.Reader, fn func(line []byte) error) error {
	br := bufio.NewReaderSize(r, maxLine)
	skipping := false
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			skipping = true
			continue
		}
		if len(line) > 0 && !skipping {
			if ferr := fn(bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))); ferr != nil {
				return ferr
			}
		}
		skipping = false
		if err == io.EOF {
			return fn(nil) // the end closes the last stanza
		}
		if err != nil {
			return err
		}
	}
}

func field(b []byte) string {
	s := strings.TrimSpace(string(b[:min(len(b), maxField)]))
	return s
}

// parseDpkg reads Package and Version from a dpkg status file at loc;
// packages whose Status is not "installed" (removed, config files left)
// are skipped.
func parseDpkg(r io.Reader, loc string, m *meter) ([]Package, error) {
	var out []Package
	var p Package
	status := ""
	end := func() error {
		if p.Name != "" && (status == "" || strings.HasSuffix(status, " installed")) {
			if err := m.items(1); err != nil {
				return err
			}
			p.Type, p.Location = "deb", loc
			out = append(out, p)
		}
		p, status = Package{}, ""
		return nil
	}
	err := eachLine(r, func(line []byte) error {
		if len(line) == 0 {
			return end()
		}
		if line[0] == ' ' || line[0] == '\t' {
			return nil
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return nil
		}
		switch string(k) {
		case "Package":
			p.Name = field(v)
		case "Version":
			p.Version = field(v)
		case "Status":
			status = field(v)
		}
		return nil
	})
	return out, err
}

// parseApk reads P: (name) and V: (version) from Alpine's installed database.
func parseApk(r io.Reader, m *meter) ([]Package, error) {
	var out []Package
	var p Package
	err := eachLine(r, func(line []byte) error {
		switch {
		case len(line) == 0:
			if p.Name != "" {
				if err := m.items(1); err != nil {
					return err
				}
				p.Type, p.Location = "apk", apkInstalled
				out = append(out, p)
			}
			p = Package{}
		case bytes.HasPrefix(line, []byte("P:")):
			p.Name = field(line[2:])
		case bytes.HasPrefix(line, []byte("V:")):
			p.Version = field(line[2:])
		}
		return nil
	})
	return out, err
}

// parsePasswd maps user names to uids from /etc/passwd.
func parsePasswd(r io.Reader, m *meter) (map[string]string, error) {
	users := map[string]string{}
	err := eachLine(r, func(line []byte) error {
		f := strings.SplitN(string(line), ":", 4)
		if len(f) < 3 || f[0] == "" {
			return nil
		}
		if _, ok := users[f[0]]; ok {
			return nil // the first line for a name is the one used
		}
		if err := m.items(1); err != nil {
			return err
		}
		users[field([]byte(f[0]))] = field([]byte(f[2]))
		return nil
	})
	return users, err
}
