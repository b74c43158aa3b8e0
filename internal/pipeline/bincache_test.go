package pipeline

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestPruneBinaries: the keep most recently used entries stay, and so do
// entries used since usedBefore and entries a build holds; the rest go.
func TestPruneBinaries(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(minutes int) time.Time { return base.Add(time.Duration(minutes) * time.Minute) }
	for _, c := range []struct {
		name       string
		used       map[string]int // entry → minute of last use
		held       string         // an entry a build holds
		keep       int
		usedBefore time.Time
		want       []string // left, sorted
	}{
		{"under the bound", map[string]int{"a": 1, "b": 2}, "", 2, at(100), []string{"a", "b"}},
		{"oldest go", map[string]int{"a": 1, "b": 2, "c": 3, "d": 4}, "", 2, at(100), []string{"c", "d"}},
		{"recent ones stay", map[string]int{"a": 1, "b": 2, "c": 3, "d": 4}, "", 1, at(2), []string{"b", "c", "d"}},
		{"held stays", map[string]int{"a": 1, "b": 2, "c": 3}, "a", 1, at(100), []string{"a", "c"}},
		{"keep 0", map[string]int{"a": 1, "b": 2}, "", 0, at(100), nil},
		{"empty cache", nil, "", 1, at(100), nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			cache := t.TempDir()
			for e, m := range c.used {
				dir := filepath.Join(cache, "bin", e)
				unlock, err := lockBinary(dir)
				if err != nil {
					t.Fatal(err)
				}
				os.WriteFile(filepath.Join(dir, "hello"), []byte("binary"), 0o755)
				if e == c.held {
					defer unlock()
				} else {
					unlock()
				}
				os.Chtimes(filepath.Join(dir, ".lock"), at(m), at(m))
			}
			removed, err := PruneBinaries(cache, c.keep, c.usedBefore)
			if err != nil {
				t.Fatal(err)
			}
			var left []string
			ents, _ := os.ReadDir(filepath.Join(cache, "bin"))
			for _, e := range ents {
				left = append(left, e.Name())
			}
			slices.Sort(left)
			if !slices.Equal(left, c.want) || removed != len(c.used)-len(c.want) {
				t.Errorf("left %v (removed %d), want %v", left, removed, c.want)
			}
		})
	}
}

// TestLockBinaryAfterPrune: a build that waited for an entry's lock while
// a prune removed the entry gets the entry made again, and the lock.
func TestLockBinaryAfterPrune(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "bin", "e")
	unlock, err := lockBinary(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error)
	go func() {
		u, err := lockBinary(dir) // waits for the lock
		if err == nil {
			if _, serr := os.Stat(filepath.Join(dir, ".lock")); serr != nil {
				err = serr
			}
			u()
		}
		got <- err
	}()
	os.RemoveAll(dir) // what a prune does while holding the lock
	unlock()
	if err := <-got; err != nil {
		t.Fatalf("lockBinary after the entry was pruned: %v", err)
	}
}

// TestPrivateLinkKeepsTheBytesThisBuildLinked: once a build has its
// private link, another build relinking the shared cache entry (go build
// replaces the file) changes nothing the first one reads.
func TestPrivateLinkKeepsTheBytesThisBuildLinked(t *testing.T) {
	cache, tmp := t.TempDir(), t.TempDir()
	bin := filepath.Join(cache, "hello")
	if err := os.WriteFile(bin, []byte("first link"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := &buildRun{tmp: tmp}
	p, err := r.privateLink(bin)
	if err != nil {
		t.Fatal(err)
	}
	next := filepath.Join(cache, ".hello.new")
	if err := os.WriteFile(next, []byte("second, longer link"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(next, bin); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil || string(got) != "first link" {
		t.Errorf("private link reads %q (%v), want the first build's bytes", got, err)
	}
	if filepath.Dir(filepath.Dir(p)) != tmp {
		t.Errorf("private link %s is not under the run's temporary directory %s", p, tmp)
	}
}
