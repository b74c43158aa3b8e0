package source

import (
	"bytes"
	"compress/zlib"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// packObject is one object of a test pack: its type number (3 blob, 6
// ofs-delta, whose base is the object before it), the size its header
// declares, and the data it holds (deflated into the pack).
type packObject struct {
	typ      byte
	declared int
	data     []byte
}

// testPack writes a version 2 pack of objs.
func testPack(t *testing.T, objs ...packObject) []byte {
	t.Helper()
	var p bytes.Buffer
	p.WriteString("PACK")
	binary.Write(&p, binary.BigEndian, uint32(2))
	binary.Write(&p, binary.BigEndian, uint32(len(objs)))
	var offsets []int
	for _, o := range objs {
		offsets = append(offsets, p.Len())
		n := o.declared
		b := o.typ<<4 | byte(n&0x0f)
		for n >>= 4; n > 0; n >>= 7 {
			p.WriteByte(b | 0x80)
			b = byte(n & 0x7f)
		}
		p.WriteByte(b)
		if o.typ == 6 {
			back := offsets[len(offsets)-1] - offsets[len(offsets)-2]
			if back >= 128 {
				t.Fatal("testPack writes one-byte delta offsets only: keep bases small")
			}
			p.WriteByte(byte(back))
		}
		zw := zlib.NewWriter(&p)
		zw.Write(o.data)
		zw.Close()
	}
	sum := sha1.Sum(p.Bytes())
	p.Write(sum[:])
	return p.Bytes()
}

// delta is git delta data from a base of baseSize to a result of
// target bytes: copies of the base's first copySize bytes, repeated.
func delta(baseSize, target, copySize int) []byte {
	d := binary.AppendUvarint(nil, uint64(baseSize))
	d = binary.AppendUvarint(d, uint64(target))
	for made := 0; made < target; made += copySize {
		// copy from offset 0 (no offset bytes), size in two bytes
		d = append(d, 0x80|0x10|0x20, byte(copySize), byte(copySize>>8))
	}
	return d
}

// TestCheckPack: the sizes a pack declares are held to what is left of
// the budget before anything is inflated into memory: a whole object's
// size, and a delta's result.
func TestCheckPack(t *testing.T) {
	const limit = 1 << 20
	small := bytes.Repeat([]byte("a"), 64)    // deflates to a few bytes: a one-byte distance back
	bomb := delta(len(small), 64<<20, 0xffff) // 64 MiB from 3 KiB of delta
	cases := []struct {
		name    string
		objs    []packObject
		refused string // "" for none
	}{
		{"a small blob", []packObject{{typ: 3, declared: len(small), data: small}}, ""},
		{"a small delta", []packObject{{typ: 3, declared: len(small), data: small}, {typ: 6, declared: len(delta(64, 8192, 64)), data: delta(64, 8192, 64)}}, ""},
		{"a blob declared past the budget", []packObject{{typ: 3, declared: 64 << 20, data: make([]byte, 1024)}}, "larger than the server's limit"},
		{"a delta whose result passes the budget", []packObject{{typ: 3, declared: len(small), data: small}, {typ: 6, declared: len(bomb), data: bomb}}, "larger than the server's limit"},
		{"a delta with no sizes", []packObject{{typ: 3, declared: len(small), data: small}, {typ: 6, declared: 1, data: []byte{0x80}}}, "malformed delta"},
		{"a blob longer than declared", []packObject{{typ: 3, declared: 16, data: small}}, "the git pack"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := checkPack(bytes.NewReader(testPack(t, c.objs...)), &budget{max: limit})
			if c.refused == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.refused) {
				t.Fatalf("got %v, want ErrInvalid saying %q", err, c.refused)
			}
		})
	}
}
