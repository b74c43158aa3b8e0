package store

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// A journal keeps small blobs durable in one append-only file, DIR/journal,
// until they are written out as layout files. A blob file costs a new
// inode and an fsync of its own; a journal record costs a write, and
// writers waiting at once share one fdatasync. Blobs are written out when
// a manifest that needs them is stored (so layout readers, which go
// through index.json, always find them), when they are mounted or
// deleted, when the journal holds more than journalHold bytes, and when
// the journal is closed; a journal left behind by a crash is written out
// when it is opened again. Meanwhile they are served from memory.
//
// Only the process that opened the journal (kiln's server) knows its
// blobs; it holds an exclusive lock on the file while it is open.
type journal struct {
	l    *Layout
	f    *os.File
	sync *dirSyncer // the fdatasync writers share

	mu        sync.Mutex
	gen       uint64 // the generation records are written in
	size      int64  // where the next record goes
	allocated int64  // the file's length: zeros past size
	inflight  int    // records appended, not yet synced
	pending   map[v1.Hash]*journalBlob
	held      int64 // bytes of pending blobs
	flushing  bool  // a background write-out is running
}

type journalBlob struct {
	data  []byte
	repos map[string]bool
}

// JournalMax is the largest blob the journal takes; larger ones are
// written as files at once.
const JournalMax = 256 << 10

// journalHold is how many bytes of blobs the journal holds (in memory
// too) before it writes them all out.
const journalHold = 64 << 20

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// OpenJournal starts keeping small blobs that uploads commit in the
// journal, first writing out any blobs a crash left in it. It fails if
// another process has the journal open.
func (l *Layout) OpenJournal() error {
	f, err := os.OpenFile(filepath.Join(l.dir, "journal"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("opening the blob journal: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return fmt.Errorf("the blob journal %s is in use by another process (is another server running on this store?)", f.Name())
	}
	j := &journal{l: l, f: f, pending: map[v1.Hash]*journalBlob{}}
	j.sync = &dirSyncer{syncFn: func() error { return syscall.Fdatasync(int(f.Fd())) }, noSync: l.noSync}
	j.sync.init()
	if err := j.recover(); err != nil {
		f.Close()
		return err
	}
	l.journal = j
	return nil
}

// CloseJournal writes out every blob the journal holds and closes it.
func (l *Layout) CloseJournal() error {
	j := l.journal
	if j == nil {
		return nil
	}
	err := j.flushAll()
	if cerr := j.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// recover writes out the records a previous process left, up to the first
// torn or corrupt one (a write a crash cut short was never acknowledged),
// then empties the journal.
func (j *journal) recover() error {
	var head [journalHeader]byte
	if _, err := j.f.ReadAt(head[:], 0); err == nil && string(head[:8]) == journalMagic {
		j.gen = binary.LittleEndian.Uint64(head[8:])
	}
	st, err := j.f.Stat()
	if err != nil {
		return fmt.Errorf("opening the blob journal: %w", err)
	}
	j.allocated = st.Size()
	r := bufio.NewReader(io.NewSectionReader(j.f, journalHeader, 1<<62))
	for j.gen != 0 {
		repo, h, data, err := readRecord(r, j.gen)
		if err != nil {
			break // the end, or a torn tail
		}
		// A file written out before the crash but never synced may be
		// short: what is there must be the blob, or it is written again.
		if got, err := os.ReadFile(j.l.blobPath(h)); err == nil && !bytes.Equal(got, data) {
			os.Remove(j.l.blobPath(h))
		}
		if err := j.writeOut(h, data); err != nil {
			if errors.Is(err, ErrDigestMismatch) {
				continue // cannot happen unless the file was edited: skip it
			}
			return fmt.Errorf("recovering the blob journal: %w", err)
		}
		if err := j.l.linkBlob(repo, h); err != nil {
			return fmt.Errorf("recovering the blob journal: %w", err)
		}
	}
	return j.truncate()
}

// writeOut writes blob h as a file without syncing it: it stays durable in
// the journal until truncate syncs the file system.
func (j *journal) writeOut(h v1.Hash, data []byte) error {
	return j.l.writeBlobFile(h, func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }, false)
}

// truncate empties the journal once what was written out of it is durable
// (every record in it must be): it starts a new generation, whose header
// makes the records of the last one invalid, and keeps the file's length,
// so that appends overwrite zeros or stale records and an fdatasync has
// only data to flush, no file size or block allocation.
func (j *journal) truncate() error {
	if !j.l.noSync {
		if err := unix.Syncfs(int(j.f.Fd())); err != nil {
			return fmt.Errorf("syncing the blobs written out of the journal: %w", err)
		}
	}
	var head [journalHeader]byte
	copy(head[:], journalMagic)
	binary.LittleEndian.PutUint64(head[8:], j.gen+1)
	if _, err := j.f.WriteAt(head[:], 0); err != nil {
		return fmt.Errorf("emptying the blob journal: %w", err)
	}
	if err := j.l.syncFile(j.f); err != nil {
		return fmt.Errorf("emptying the blob journal: %w", err)
	}
	j.gen++
	j.size = journalHeader
	j.allocated = max(j.allocated, journalHeader)
	return nil
}

// journalMagic starts the journal's header, which also holds the
// generation (8 bytes, little endian).
const (
	journalMagic  = "KILNJRN1"
	journalHeader = 16
)

// journalGrow is how far the journal file is extended with zeros at a
// time, ahead of the records.
const journalGrow = 8 << 20

// reserve makes room for n more bytes past size, extending the file with
// zeros and syncing its new length; under j.mu.
func (j *journal) reserve(n int64) error {
	if j.size+n <= j.allocated {
		return nil
	}
	grow := max(journalGrow, j.size+n-j.allocated)
	zeros := make([]byte, 1<<20)
	for off := j.allocated; off < j.allocated+grow; off += int64(len(zeros)) {
		if _, err := j.f.WriteAt(zeros[:min(int64(len(zeros)), j.allocated+grow-off)], off); err != nil {
			return err
		}
	}
	if err := j.l.syncFile(j.f); err != nil {
		return err
	}
	j.allocated += grow
	return nil
}

// put makes data, which the caller has checked hashes to h, blob h of repo
// once it is durable in the journal.
func (j *journal) put(repo string, h v1.Hash, data []byte) error {
	j.mu.Lock()
	if b, ok := j.pending[h]; ok && b.repos[repo] {
		j.mu.Unlock()
		return nil
	}
	rec := encodeRecord(j.gen, repo, h, data)
	err := j.reserve(int64(len(rec)))
	if err == nil {
		_, err = j.f.WriteAt(rec, j.size)
	}
	if err == nil {
		j.size += int64(len(rec))
		j.inflight++
	}
	j.mu.Unlock()
	if err != nil {
		return fmt.Errorf("writing blob %s to the journal: %w", h, err)
	}
	err = j.sync.Sync()
	j.mu.Lock()
	j.inflight--
	if err == nil {
		b := j.pending[h]
		if b == nil {
			b = &journalBlob{data: data, repos: map[string]bool{}}
			j.pending[h] = b
			j.held += int64(len(data))
		}
		b.repos[repo] = true
	}
	full := j.held > journalHold && !j.flushing
	if full {
		j.flushing = true
	}
	j.mu.Unlock()
	if err != nil {
		return fmt.Errorf("writing blob %s to the journal: %w", h, err)
	}
	if full {
		go func() {
			j.flushAll() // an error leaves the blobs in the journal, served from memory
			j.mu.Lock()
			j.flushing = false
			j.mu.Unlock()
		}()
	}
	return nil
}

// get returns blob h of repo if the journal holds it.
func (j *journal) get(repo string, h v1.Hash) ([]byte, bool) {
	if j == nil {
		return nil, false
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if b, ok := j.pending[h]; ok && b.repos[repo] {
		return b.data, true
	}
	return nil, false
}

// repos lists the repositories holding blob h in the journal.
func (j *journal) repos(h v1.Hash) []string {
	if j == nil {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	var names []string
	if b, ok := j.pending[h]; ok {
		for n := range b.repos {
			names = append(names, n)
		}
	}
	return names
}

// flushAll writes out every blob the journal holds. Blobs pushed while it
// runs are written out in further rounds, so that under steady pushes the
// journal still empties (a few rounds at most, each shorter).
func (j *journal) flushAll() error {
	if j == nil {
		return nil
	}
	for range 8 {
		j.mu.Lock()
		hs := make([]v1.Hash, 0, len(j.pending))
		for h := range j.pending {
			hs = append(hs, h)
		}
		j.mu.Unlock()
		if len(hs) == 0 {
			return nil
		}
		if err := j.flush(hs); err != nil {
			return err
		}
	}
	return nil
}

// flush writes out the blobs hs that the journal holds, as files linked
// into their repositories, and empties the journal file once it holds
// nothing more.
func (j *journal) flush(hs []v1.Hash) error {
	if j == nil {
		return nil
	}
	j.mu.Lock()
	type out struct {
		h v1.Hash
		b *journalBlob
	}
	var todo []out
	for _, h := range hs {
		if b, ok := j.pending[h]; ok {
			todo = append(todo, out{h, b})
		}
	}
	j.mu.Unlock()
	for _, o := range todo {
		if err := j.writeOut(o.h, o.b.data); err != nil {
			return err
		}
		j.mu.Lock()
		repos := make([]string, 0, len(o.b.repos))
		for r := range o.b.repos {
			repos = append(repos, r)
		}
		j.mu.Unlock()
		for _, r := range repos {
			if err := j.l.linkBlob(r, o.h); err != nil {
				return err
			}
		}
		j.mu.Lock()
		// A push to another repository between the links and now is
		// linked too before the blob leaves the journal.
		for r := range o.b.repos {
			if !contains(repos, r) {
				if err := j.l.linkBlob(r, o.h); err != nil {
					j.mu.Unlock()
					return err
				}
			}
		}
		if j.pending[o.h] == o.b {
			delete(j.pending, o.h)
			j.held -= int64(len(o.b.data))
		}
		j.mu.Unlock()
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.pending) == 0 && j.inflight == 0 && j.size > journalHeader {
		return j.truncate()
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// A record: its payload's length and CRC-32C (4 bytes each, little
// endian; the CRC also covers the generation, so a record left from an
// earlier one is invalid), then the payload: the repository, the digest
// and the blob, each preceded by its length as a uvarint.
func encodeRecord(gen uint64, repo string, h v1.Hash, data []byte) []byte {
	digest := h.String()
	payload := make([]byte, 0, 3*binary.MaxVarintLen64+len(repo)+len(digest)+len(data))
	for _, part := range [][]byte{[]byte(repo), []byte(digest), data} {
		payload = binary.AppendUvarint(payload, uint64(len(part)))
		payload = append(payload, part...)
	}
	rec := make([]byte, 8, 8+len(payload))
	binary.LittleEndian.PutUint32(rec[0:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(rec[4:], recordCRC(gen, payload))
	return append(rec, payload...)
}

func recordCRC(gen uint64, payload []byte) uint32 {
	var g [8]byte
	binary.LittleEndian.PutUint64(g[:], gen)
	return crc32.Update(crc32.Checksum(g[:], crcTable), crcTable, payload)
}

var errBadRecord = errors.New("bad journal record")

func readRecord(r *bufio.Reader, gen uint64) (repo string, h v1.Hash, data []byte, err error) {
	var head [8]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return "", v1.Hash{}, nil, err
	}
	n := binary.LittleEndian.Uint32(head[0:])
	if n > JournalMax+4096 {
		return "", v1.Hash{}, nil, errBadRecord
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return "", v1.Hash{}, nil, err
	}
	if recordCRC(gen, payload) != binary.LittleEndian.Uint32(head[4:]) {
		return "", v1.Hash{}, nil, errBadRecord
	}
	var parts [3][]byte
	for i := range parts {
		l, k := binary.Uvarint(payload)
		if k <= 0 || l > uint64(len(payload)-k) {
			return "", v1.Hash{}, nil, errBadRecord
		}
		parts[i], payload = payload[k:k+int(l)], payload[k+int(l):]
	}
	h, err = ParseDigest(string(parts[1]))
	if err != nil || ValidName(string(parts[0])) != nil {
		return "", v1.Hash{}, nil, errBadRecord
	}
	return string(parts[0]), h, parts[2], nil
}
