package store

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// A journal keeps small blobs durable in one append-only file, DIR/journal,
// until they are written out as layout files. A blob file costs a new
// inode and an fsync of its own; a journal record costs a share of one
// synchronous write, which carries every record queued while the last one
// ran (a group commit). Blobs are written out when
// a manifest that needs them is stored (so layout readers, which go
// through index.json, always find them), when they are mounted or
// deleted, when the journal holds more than journalHold bytes, and when
// the journal is closed; a journal left behind by a crash is written out
// when it is opened again. Meanwhile they are served from memory.
//
// Only the process that opened the journal (kiln's server) knows its
// blobs; it holds an exclusive lock on the file while it is open.
type journal struct {
	rs   *Repositories
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

	queue          []byte // records waiting for the next write, from queueAt
	queueAt        int64
	writing        bool       // a write is running
	taken, written uint64     // batches taken by a writer, and written
	wrote          *sync.Cond // on j.mu: a batch was written
	failed         error      // a write failed: the journal takes no more
	writingOut     int        // flushes running
	switching      bool       // the journal is being emptied: records wait
	// unsynced: a blob was written out without an fsync of its own since
	// the file system was last synced (true from the start: a crash may
	// have left any). While false, every file the journal wrote is
	// durable and emptying it needs no sync of the file system.
	unsynced bool
}

// syncFS syncs the whole file system that holds fd; a seam for tests.
var syncFS = unix.Syncfs

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

// OpenJournal starts keeping small blobs that uploads commit in the
// journal, first writing out any blobs a crash left in it. It fails if
// another process has the journal open.
func (rs *Repositories) OpenJournal() error {
	// A gc in another process finishes first, and none starts until the
	// journal is held (see checkNotServed).
	unlock, err := rs.layout.sweep.sharedAcrossProcesses()
	if err != nil {
		return err
	}
	defer unlock()
	f, err := os.OpenFile(filepath.Join(rs.layout.dir, "journal"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("opening the blob journal: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return fmt.Errorf("the blob journal %s is in use by another process (is another server running on this store?)", f.Name())
	}
	j := &journal{rs: rs, f: f, pending: map[v1.Hash]*journalBlob{}, unsynced: true}
	j.wrote = sync.NewCond(&j.mu)
	j.sync = &dirSyncer{syncFn: func() error { return syscall.Fdatasync(int(f.Fd())) }, noSync: rs.layout.noSync}
	j.sync.init()
	// Writes go through the page cache into preallocated blocks, and the
	// writers of a batch share one fdatasync. Direct, synchronous writes
	// measured the same on this project's machines (docs/benchmarks.md),
	// so the journal has this one path.
	if err := j.recover(); err != nil {
		j.close()
		return err
	}
	rs.journal = j
	return nil
}

func (j *journal) close() error { return j.f.Close() }

// CloseJournal writes out every blob the journal holds and closes it.
func (rs *Repositories) CloseJournal() error {
	j := rs.journal
	if j == nil {
		return nil
	}
	err := j.flushAll()
	if cerr := j.close(); err == nil {
		err = cerr
	}
	return err
}

// recover writes out the records of the current generation a previous
// process left, then empties the journal. Records start at block
// boundaries; writers write side by side, so a record cut short by a crash
// (never acknowledged) may lie between whole ones: the scan goes on at the
// next block.
func (j *journal) recover() error {
	var head [16]byte
	if _, err := j.f.ReadAt(head[:], 0); err == nil && string(head[:8]) == journalMagic {
		j.gen = binary.LittleEndian.Uint64(head[8:])
	}
	st, err := j.f.Stat()
	if err != nil {
		return fmt.Errorf("opening the blob journal: %w", err)
	}
	size := st.Size() / journalBlock * journalBlock
	j.allocated = size
	// The records are applied in order first, so a delete cancels the
	// puts before it, and only what remains is written out.
	type key struct {
		repo string
		h    v1.Hash
	}
	var order []key
	kept := map[key][]byte{}
	for off := int64(journalBlock); j.gen != 0 && off < size; {
		op, repo, h, data, n := readRecord(j.f, off, size, j.gen)
		if n == 0 {
			off += journalBlock // zeros, a stale or torn record: try the next block
			continue
		}
		off += n
		k := key{repo, h}
		if op == opDelete {
			delete(kept, k)
			continue
		}
		if _, ok := kept[k]; !ok {
			order = append(order, k)
		}
		kept[k] = data
	}
	for _, k := range order {
		data, ok := kept[k]
		if !ok {
			continue
		}
		// A file written out before the crash but never synced may be
		// short: what is there must be the blob, or it is written again.
		if !sameContent(j.rs.layout.blobPath(k.h), data) {
			os.Remove(j.rs.layout.blobPath(k.h))
		}
		if err := j.writeOut(k.h, data); err != nil {
			if errors.Is(err, ErrDigestMismatch) {
				continue // cannot happen unless the file was edited: skip it
			}
			return fmt.Errorf("recovering the blob journal: %w", err)
		}
		if err := j.rs.linkBlob(k.repo, k.h); err != nil {
			return fmt.Errorf("recovering the blob journal: %w", err)
		}
		j.rs.protected.add(k.h) // a push cut short may come back for it
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.truncate()
}

// sameContent reports whether the file at path is missing or holds data,
// reading no more of it than data's length.
func sameContent(path string, data []byte) bool {
	f, err := os.Open(path)
	if err != nil {
		return true
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || st.Size() != int64(len(data)) {
		return false
	}
	got := make([]byte, len(data))
	_, err = io.ReadFull(f, got)
	return err == nil && bytes.Equal(got, data)
}

// writeOut writes blob h as a file without syncing it: it stays durable in
// the journal until truncate syncs the file system.
func (j *journal) writeOut(h v1.Hash, data []byte) error {
	j.mu.Lock()
	j.unsynced = true
	j.mu.Unlock()
	return j.rs.layout.writeBlobFile(h, blobBytes(data), false)
}

func blobBytes(data []byte) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
}

// truncate empties the journal once what was written out of it is durable
// (every record in it must be): it starts a new generation, whose header
// makes the records of the last one invalid, and keeps the file's length,
// so that appends overwrite zeros or stale records and an fdatasync has
// only data to flush, no file size or block allocation. Under j.mu.
func (j *journal) truncate() error {
	if !j.rs.layout.noSync && j.unsynced {
		// Reads go on while the file system syncs, which can take a while
		// on a busy one; records wait (see awaitSwitch).
		j.switching = true
		j.unsynced = false
		j.mu.Unlock()
		err := syncFS(int(j.f.Fd()))
		j.mu.Lock()
		j.switching = false
		j.wrote.Broadcast()
		if err != nil {
			j.unsynced = true
			return fmt.Errorf("syncing the blobs written out of the journal: %w", err)
		}
	}
	// A random generation: records of an earlier one, and bytes a client
	// pushed that look like a record, fail the CRC.
	var gen [8]byte
	if _, err := rand.Read(gen[:]); err != nil {
		return err
	}
	head := alignedBlock(journalBlock)
	copy(head, journalMagic)
	copy(head[8:], gen[:])
	_, err := j.f.WriteAt(head, 0)
	if err == nil {
		err = j.syncWrites()
	}
	if err != nil {
		// The header on disk may be either generation: records of either
		// could be lost, so the journal takes none from now on.
		j.failed = fmt.Errorf("emptying the blob journal: %w", err)
		return j.failed
	}
	j.gen = binary.LittleEndian.Uint64(gen[:])
	j.size = journalBlock
	j.allocated = max(j.allocated, journalBlock)
	return nil
}

// syncWrites makes the journal's writes durable.
func (j *journal) syncWrites() error { return j.rs.layout.syncFile(j.f) }

// journalGrow is how far the journal file is extended with zeros at a
// time, ahead of the records.
const journalGrow = 8 << 20

// reserve makes room for n more bytes past size, extending the file with
// zeros and syncing its new length; under j.mu.
func (j *journal) reserve(n int64) error {
	if j.size+n <= j.allocated {
		return nil
	}
	grow := padded(max(journalGrow, j.size+n-j.allocated))
	zeros := alignedBlock(1 << 20)
	for off := j.allocated; off < j.allocated+grow; off += int64(len(zeros)) {
		if _, err := j.f.WriteAt(zeros[:min(int64(len(zeros)), j.allocated+grow-off)], off); err != nil {
			return err
		}
	}
	if err := j.syncWrites(); err != nil {
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
		j.rs.protected.add(h)
		return nil
	}
	err := j.append(opPut, repo, h, data)
	if err == nil {
		b := j.pending[h]
		if b == nil {
			b = &journalBlob{data: data, repos: map[string]bool{}}
			j.pending[h] = b
			j.held += int64(len(data))
		}
		b.repos[repo] = true
	}
	// Written out past journalHold bytes held, or past journalHold bytes
	// of file since it was last emptied (a blob pushed and never used
	// would otherwise keep the journal from ever emptying).
	full := (j.held > journalHold || j.size > journalHold) && !j.flushing
	if full {
		j.flushing = true
	}
	j.mu.Unlock()
	if err != nil {
		return fmt.Errorf("writing blob %s to the journal: %w", h, err)
	}
	j.rs.protected.add(h)
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

// append writes a record and returns once it is durable; under j.mu,
// which it releases while it waits. It first waits out an emptying of the
// journal, so the record takes the new generation and offset.
func (j *journal) append(op byte, repo string, h v1.Hash, data []byte) error {
	j.awaitSwitch()
	rec := encodeRecord(j.gen, op, repo, h, data)
	if err := j.reserve(int64(len(rec))); err != nil {
		return err
	}
	return j.write(rec)
}

// write queues rec and returns once it is durable; under j.mu, which it
// releases while it waits. Records queue up while a write is running, and
// the next writer writes them all in one: one disk write and its wait for
// many records.
func (j *journal) write(rec []byte) error {
	if len(j.queue) == 0 {
		j.queueAt = j.size
	}
	j.queue = append(j.queue, rec...)
	j.size += int64(len(rec))
	j.inflight++
	defer func() { j.inflight-- }()
	batch := j.taken + 1 // the batch rec goes out in
	for j.written < batch {
		if j.failed != nil {
			return j.failed
		}
		if j.writing {
			j.wrote.Wait()
			continue
		}
		j.writing = true
		j.taken++
		buf, at := alignedBlock(len(j.queue)), j.queueAt
		copy(buf, j.queue)
		j.queue = j.queue[:0]
		j.mu.Unlock()
		_, err := j.f.WriteAt(buf, at)
		if err == nil {
			err = j.sync.Sync()
		}
		j.mu.Lock()
		j.writing = false
		j.written = j.taken
		if err != nil {
			j.failed = fmt.Errorf("the blob journal failed: %w", err)
		}
		j.wrote.Broadcast()
	}
	return j.failed
}

// awaitSwitch waits, under j.mu, while the journal is being emptied: a
// record written then would belong to the generation being retired.
func (j *journal) awaitSwitch() {
	for j.switching {
		j.wrote.Wait()
	}
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
	// Blobs written out become files gc can see: not in the middle of its
	// sweep.
	defer j.rs.layout.sweep.shared()()
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
func (j *journal) flush(hs []v1.Hash) error { return j.flushSync(hs, false) }

// flushSync is flush; with durable, what it writes out is synced before it
// returns, for a manifest that layout readers may follow at once.
//
// Durable write-outs sync each blob file and the directories it is
// renamed and linked into: a few small fsyncs. A sync of the whole file
// system would also write every other process's dirty pages (on a build
// machine: the binary just linked, the layer just written), which took
// 0.03-0.6 s of each manifest push. Only while an earlier write-out left
// files unsynced, one of which may be a blob this manifest needs, is the
// file system synced instead.
func (j *journal) flushSync(hs []v1.Hash, durable bool) (err error) {
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
	fileByFile := durable && !j.unsynced
	// While blobs are being written out the journal is not emptied: a
	// file not yet synced may be all there is of them.
	j.writingOut++
	j.mu.Unlock()
	defer func() {
		j.mu.Lock()
		j.writingOut--
		j.mu.Unlock()
	}()
	if durable && !j.rs.layout.noSync {
		// Also when another write-out ran meanwhile: a blob this manifest
		// needs may have left the journal through it, unsynced.
		defer func() {
			j.mu.Lock()
			need := j.unsynced
			j.mu.Unlock()
			if err == nil && need {
				if serr := syncFS(int(j.f.Fd())); serr != nil {
					err = fmt.Errorf("syncing blobs written out of the journal: %w", serr)
				}
			}
		}()
	}
	link := j.rs.linkBlob
	if fileByFile {
		link = j.rs.linkBlobDurably
	}
	for _, o := range todo {
		if fileByFile {
			err = j.rs.layout.writeBlobFile(o.h, blobBytes(o.b.data), true)
		} else {
			err = j.writeOut(o.h, o.b.data)
		}
		if err != nil {
			return err
		}
		j.mu.Lock()
		repos := make([]string, 0, len(o.b.repos))
		for r := range o.b.repos {
			repos = append(repos, r)
		}
		j.mu.Unlock()
		for _, r := range repos {
			if err := link(r, o.h); err != nil {
				return err
			}
		}
		j.mu.Lock()
		// A push to another repository between the links and now is
		// linked too before the blob leaves the journal.
		for r := range o.b.repos {
			if !slices.Contains(repos, r) {
				if err := j.rs.linkBlob(r, o.h); err != nil {
					j.mu.Unlock()
					return err
				}
				j.unsynced = true
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
	if len(j.pending) == 0 && j.inflight == 0 && j.writingOut == 1 && j.size > journalBlock {
		return j.truncate()
	}
	return nil
}

// forget records that blob h left repository repo, so that a recovery
// does not bring it back from an earlier record; the caller writes it out
// first.
func (j *journal) forget(repo string, h v1.Hash) error {
	if j == nil {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.awaitSwitch()
	if j.size <= journalBlock {
		return nil // an empty journal has no record of it
	}
	if err := j.append(opDelete, repo, h, nil); err != nil {
		return fmt.Errorf("recording the delete of %s in the journal: %w", h, err)
	}
	return nil
}
