package store

import (
	"encoding/binary"
	"hash/crc32"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The journal's file format: a header block, then records, each starting
// at a block boundary.

// journalMagic starts the journal's header block, which also holds the
// generation (8 bytes, little endian). Records start at block boundaries
// (once for direct I/O; kept, as the format a journal on disk has).
const (
	journalMagic = "KILNJRN1"
	journalBlock = 4096
)

// alignedBlock returns n zero bytes (a multiple of journalBlock).
func alignedBlock(n int) []byte { return make([]byte, n) }

func padded(n int64) int64 { return (n + journalBlock - 1) / journalBlock * journalBlock }

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// A record: its payload's length and CRC-32C (4 bytes each, little
// endian; the CRC also covers the generation, so a record left from an
// earlier one is invalid), then the payload: the operation (opPut or
// opDelete), then the repository, the digest and the blob, each preceded
// by its length as a uvarint; then zeros to the next block boundary. It
// is returned as a whole number of blocks.
func encodeRecord(gen uint64, op byte, repo string, h v1.Hash, data []byte) []byte {
	digest := h.String()
	payload := make([]byte, 1, 1+3*binary.MaxVarintLen64+len(repo)+len(digest)+len(data))
	payload[0] = op
	for _, part := range [][]byte{[]byte(repo), []byte(digest), data} {
		payload = binary.AppendUvarint(payload, uint64(len(part)))
		payload = append(payload, part...)
	}
	rec := alignedBlock(int(padded(int64(8 + len(payload)))))
	binary.LittleEndian.PutUint32(rec[0:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(rec[4:], recordCRC(gen, payload))
	copy(rec[8:], payload)
	return rec
}

// The operations a record holds.
const (
	opPut    = 'P' // the blob, into the repository
	opDelete = 'D' // cancels the puts of the blob into the repository before it
)

func recordCRC(gen uint64, payload []byte) uint32 {
	var g [8]byte
	binary.LittleEndian.PutUint64(g[:], gen)
	return crc32.Update(crc32.Checksum(g[:], crcTable), crcTable, payload)
}

// readRecord reads the record of generation gen at off in f, a file of
// size bytes, and returns it with the bytes it takes (0: no valid record
// there).
func readRecord(f *os.File, off, size int64, gen uint64) (op byte, repo string, h v1.Hash, data []byte, n int64) {
	var head [8]byte
	if _, err := f.ReadAt(head[:], off); err != nil {
		return 0, "", v1.Hash{}, nil, 0
	}
	l := int64(binary.LittleEndian.Uint32(head[0:]))
	if l == 0 || l > JournalMax+4096 || off+8+l > size {
		return 0, "", v1.Hash{}, nil, 0
	}
	payload := make([]byte, l)
	if _, err := f.ReadAt(payload, off+8); err != nil || recordCRC(gen, payload) != binary.LittleEndian.Uint32(head[4:]) {
		return 0, "", v1.Hash{}, nil, 0
	}
	if len(payload) == 0 || (payload[0] != opPut && payload[0] != opDelete) {
		return 0, "", v1.Hash{}, nil, 0
	}
	op, payload = payload[0], payload[1:]
	var parts [3][]byte
	for i := range parts {
		pl, k := binary.Uvarint(payload)
		if k <= 0 || pl > uint64(len(payload)-k) {
			return 0, "", v1.Hash{}, nil, 0
		}
		parts[i], payload = payload[k:k+int(pl)], payload[k+int(pl):]
	}
	h, err := ParseDigest(string(parts[1]))
	if err != nil || ValidName(string(parts[0])) != nil {
		return 0, "", v1.Hash{}, nil, 0
	}
	return op, string(parts[0]), h, parts[2], padded(8 + l)
}
