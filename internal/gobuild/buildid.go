package gobuild

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
)

// BuildID reads the Go build ID from a linux binary's .note.go.buildid
// section without reading the rest of the file. Its last element is a hash
// of the binary's content, so equal IDs mean equal binaries.
func BuildID(path string) (string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	s := f.Section(".note.go.buildid")
	if s == nil {
		return "", errors.New("no Go build ID note")
	}
	data, err := io.ReadAll(io.LimitReader(s.Open(), 4096))
	if err != nil {
		return "", err
	}
	// An ELF note: namesz, descsz, type (4 bytes each, file byte order), name, desc.
	if len(data) < 16 {
		return "", errors.New("short Go build ID note")
	}
	order := f.ByteOrder
	namesz, descsz := order.Uint32(data[0:]), order.Uint32(data[4:])
	nameEnd := 12 + int(namesz+3)&^3
	if namesz != 4 || !bytes.HasPrefix(data[12:], []byte("Go\x00")) || nameEnd+int(descsz) > len(data) {
		return "", fmt.Errorf("malformed Go build ID note")
	}
	return string(data[nameEnd : nameEnd+int(descsz)]), nil
}
