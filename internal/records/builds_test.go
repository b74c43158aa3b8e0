package records

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/buildrecord"
	"github.com/kilnbuild/kiln/internal/testutil"
)

func newBuild(kind string, pkgs ...string) *buildrecord.Build {
	return &buildrecord.Build{
		Request:       json.RawMessage(`{"packages":["./cmd/app"]}`),
		Packages:      pkgs,
		Source:        buildrecord.Source{Kind: kind, Ref: "ref"},
		ServerVersion: "test",
	}
}

func mustCreate(t testing.TB, db *DB, b *buildrecord.Build) *buildrecord.Build {
	t.Helper()
	if err := db.Create(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCreateGet(t *testing.T) {
	clock := testutil.NewClock()
	db, _ := open(t, WithClock(clock.Now))
	ctx := context.Background()
	b := newBuild("module", "./cmd/app", "./cmd/app", "./cmd/tool")
	b.State = buildrecord.Succeeded // ignored: a new build is queued
	b.RetryOf = "0000000000000001abcd"
	mustCreate(t, db, b)
	if !validID(b.ID) || b.State != buildrecord.Queued || !b.Times[buildrecord.Queued].Equal(clock.Now()) || len(b.Times) != 1 {
		t.Fatalf("created %+v", b)
	}
	got, err := db.Get(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantJSON, _ := json.Marshal(b)
	gotJSON, _ := json.Marshal(got)
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("Get:\n got %s\nwant %s", gotJSON, wantJSON)
	}
	if _, err := db.Get(ctx, "ffffffffffffffffffff"); !errors.Is(err, buildrecord.ErrNotFound) {
		t.Errorf("Get of a missing build: %v, want ErrNotFound", err)
	}
	if _, err := db.Get(ctx, "not an id"); !errors.Is(err, buildrecord.ErrNotFound) {
		t.Errorf("Get of a malformed ID: %v, want ErrNotFound", err)
	}
}

func TestCreateRefuses(t *testing.T) {
	db, _ := open(t)
	for _, tc := range []struct {
		name string
		b    *buildrecord.Build
	}{
		{"nil", nil},
		{"no source kind", &buildrecord.Build{Packages: []string{"./cmd/app"}}},
		{"request not JSON", &buildrecord.Build{Source: buildrecord.Source{Kind: "git"}, Request: json.RawMessage(`{"packages":`)}},
		{"empty package", &buildrecord.Build{Source: buildrecord.Source{Kind: "git"}, Packages: []string{"./a", ""}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before buildrecord.Build
			if tc.b != nil {
				before = *tc.b
			}
			if err := db.Create(context.Background(), tc.b); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Create: %v, want ErrInvalid", err)
			}
			if tc.b != nil && (tc.b.ID != before.ID || tc.b.State != before.State || tc.b.Times != nil) {
				t.Fatalf("a refused Create changed the build: %+v", tc.b)
			}
		})
	}
	p, err := db.List(context.Background(), buildrecord.Filter{})
	if err != nil || len(p.Builds) != 0 {
		t.Fatalf("after refused creates: %d builds, %v", len(p.Builds), err)
	}
}

// IDs grow with every Create, even when the clock stands still or steps
// back, and after a reopen with a clock behind the stored builds.
func TestIDsIncrease(t *testing.T) {
	clock := testutil.NewClock()
	db, path := open(t, WithClock(clock.Now))
	var ids []string
	for range 5 {
		ids = append(ids, mustCreate(t, db, newBuild("git")).ID)
	}
	db.Close()
	past := func() time.Time { return clock.Now().Add(-time.Hour) }
	db, err := Open(context.Background(), path, WithClock(past))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for range 3 {
		ids = append(ids, mustCreate(t, db, newBuild("git")).ID)
	}
	if !slices.IsSorted(ids) || len(slices.Compact(slices.Clone(ids))) != len(ids) {
		t.Fatalf("IDs not strictly increasing: %q", ids)
	}
}

func TestListFilters(t *testing.T) {
	db, _ := open(t)
	ctx := context.Background()
	a := mustCreate(t, db, newBuild("git", "./cmd/a"))
	b := mustCreate(t, db, newBuild("module", "./cmd/b", "./cmd/a"))
	c := mustCreate(t, db, newBuild("upload", "./cmd/c"))
	d := mustCreate(t, db, newBuild("git", "./cmd/b"))
	if _, err := db.Transition(ctx, b.ID, buildrecord.Running, time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Transition(ctx, c.ID, buildrecord.Cancelled, time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		f    buildrecord.Filter
		want []*buildrecord.Build
	}{
		{"all, newest first", buildrecord.Filter{}, []*buildrecord.Build{d, c, b, a}},
		{"state queued", buildrecord.Filter{State: buildrecord.Queued}, []*buildrecord.Build{d, a}},
		{"state running", buildrecord.Filter{State: buildrecord.Running}, []*buildrecord.Build{b}},
		{"state none", buildrecord.Filter{State: buildrecord.Failed}, nil},
		{"package a", buildrecord.Filter{Package: "./cmd/a"}, []*buildrecord.Build{b, a}},
		{"package b", buildrecord.Filter{Package: "./cmd/b"}, []*buildrecord.Build{d, b}},
		{"package unknown", buildrecord.Filter{Package: "./cmd/z"}, nil},
		{"source git", buildrecord.Filter{SourceKind: "git"}, []*buildrecord.Build{d, a}},
		{"source and package", buildrecord.Filter{SourceKind: "git", Package: "./cmd/b"}, []*buildrecord.Build{d}},
		{"state and package", buildrecord.Filter{State: buildrecord.Queued, Package: "./cmd/a"}, []*buildrecord.Build{a}},
		{"cursor", buildrecord.Filter{Cursor: c.ID}, []*buildrecord.Build{b, a}},
		{"cursor and source", buildrecord.Filter{Cursor: c.ID, SourceKind: "git"}, []*buildrecord.Build{a}},
		{"cursor and package", buildrecord.Filter{Cursor: b.ID, Package: "./cmd/a"}, []*buildrecord.Build{a}},
		{"cursor past the oldest", buildrecord.Filter{Cursor: a.ID}, nil},
		{"limit", buildrecord.Filter{Limit: 2}, []*buildrecord.Build{d, c}},
		{"limit over max", buildrecord.Filter{Limit: MaxLimit + 1}, []*buildrecord.Build{d, c, b, a}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := db.List(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := ids(p.Builds), ids(tc.want); !slices.Equal(got, want) {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
}

func TestListDefaultLimit(t *testing.T) {
	db, _ := open(t)
	for range DefaultLimit + 3 {
		mustCreate(t, db, newBuild("git", "./cmd/app"))
	}
	p, err := db.List(context.Background(), buildrecord.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Builds) != DefaultLimit || p.Next != p.Builds[DefaultLimit-1].ID {
		t.Fatalf("%d builds, next %q", len(p.Builds), p.Next)
	}
	p, err = db.List(context.Background(), buildrecord.Filter{Cursor: p.Next})
	if err != nil || len(p.Builds) != 3 || p.Next != "" {
		t.Fatalf("second page: %d builds, next %q, %v", len(p.Builds), p.Next, err)
	}
}

func TestListMaxLimit(t *testing.T) {
	db, _ := open(t)
	for range MaxLimit + 1 {
		mustCreate(t, db, newBuild("git", "./cmd/app"))
	}
	p, err := db.List(context.Background(), buildrecord.Filter{Limit: 2 * MaxLimit})
	if err != nil || len(p.Builds) != MaxLimit || p.Next == "" {
		t.Fatalf("%d builds, next %q, %v", len(p.Builds), p.Next, err)
	}
}

func TestListRefuses(t *testing.T) {
	db, _ := open(t)
	for _, tc := range []struct {
		name string
		f    buildrecord.Filter
	}{
		{"unknown state", buildrecord.Filter{State: "done"}},
		{"cursor not an ID", buildrecord.Filter{Cursor: "abc"}},
		{"cursor upper case", buildrecord.Filter{Cursor: "0000000000000001ABCD"}},
		{"cursor with SQL", buildrecord.Filter{Cursor: "' OR 1=1 --         "}},
		{"negative limit", buildrecord.Filter{Limit: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := db.List(context.Background(), tc.f); !errors.Is(err, ErrInvalid) {
				t.Fatalf("List: %v, want ErrInvalid", err)
			}
		})
	}
}

// Paging through builds while others are being created sees each build
// once, newest first, with no gaps: every matching build up to the
// newest one on the first page (IDs are committed in order, so all of
// them existed then), and the last page has no Next.
func TestListPagesWhileCreating(t *testing.T) {
	db, _ := open(t)
	ctx := context.Background()
	for i := range 95 {
		mustCreate(t, db, newBuild([]string{"git", "module"}[i%2], fmt.Sprintf("./cmd/p%d", i%3)))
	}

	// A writer creates builds beside the pages. Each page is followed by
	// one build the writer is asked for and has finished, so every run
	// interleaves creates with paging whatever the scheduler does; the
	// writer keeps creating freely in between.
	stop, more, made, done := make(chan struct{}), make(chan struct{}), make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(done)
		for i := 0; ; i++ {
			asked := false
			select {
			case <-stop:
				return
			case <-more:
				asked = true
			default:
			}
			if err := db.Create(ctx, newBuild([]string{"git", "module"}[i%2], fmt.Sprintf("./cmd/p%d", i%3))); err != nil {
				t.Error(err)
				return
			}
			if asked {
				made <- struct{}{}
			}
		}
	})
	filters := []buildrecord.Filter{{Limit: 10}, {Limit: 7, SourceKind: "git"}, {Limit: 4, Package: "./cmd/p1"}, {Limit: 3, State: buildrecord.Queued, Package: "./cmd/p2"}}
	seen := make([][]string, len(filters))
	for i, f := range filters {
		for pages := 0; ; pages++ {
			if pages > 200 {
				t.Fatal("paging does not end")
			}
			p, err := db.List(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Builds) > f.Limit || (p.Next != "" && len(p.Builds) != f.Limit) {
				t.Fatalf("page of %d with next %q, limit %d", len(p.Builds), p.Next, f.Limit)
			}
			seen[i] = append(seen[i], ids(p.Builds)...)
			select {
			case more <- struct{}{}:
			case <-done:
				t.Fatal("the writer stopped")
			}
			select {
			case <-made:
			case <-done:
				t.Fatal("the writer stopped")
			}
			if p.Next == "" {
				break
			}
			f.Cursor = p.Next
		}
	}
	close(stop)
	wg.Wait()

	total := len(listAll(t, db, buildrecord.Filter{}))
	if total <= 95 {
		t.Fatalf("no builds were created while paging (%d in all)", total)
	}
	for i, f := range filters {
		f.Cursor = nextAfter(seen[i][0])
		if want := listAll(t, db, f); !slices.Equal(seen[i], want) {
			t.Errorf("filter %+v: paged\n%q\nwant\n%q", filters[i], seen[i], want)
		}
	}
}

// listAll pages through everything f matches, with nothing being created.
func listAll(t *testing.T, db *DB, f buildrecord.Filter) []string {
	t.Helper()
	f.Limit = MaxLimit
	var out []string
	for {
		p, err := db.List(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ids(p.Builds)...)
		if p.Next == "" {
			return out
		}
		f.Cursor = p.Next
	}
}

// nextAfter is the smallest ID greater than id, a cursor that includes id.
func nextAfter(id string) string {
	var n uint64
	fmt.Sscanf(id[16:], "%x", &n)
	return id[:16] + fmt.Sprintf("%04x", n+1)
}

func ids(bs []*buildrecord.Build) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.ID)
	}
	return out
}

// A Create that fails in the database (here: at its last insert) leaves
// the build as it was and stores nothing.
func TestCreateFailureLeavesBuild(t *testing.T) {
	db, _ := open(t)
	ctx := context.Background()
	if _, err := db.w.ExecContext(ctx, `CREATE TRIGGER fail BEFORE INSERT ON build_packages BEGIN SELECT RAISE(ABORT, 'refused by test'); END`); err != nil {
		t.Fatal(err)
	}
	b := newBuild("git", "./cmd/app")
	if err := db.Create(ctx, b); err == nil {
		t.Fatal("Create succeeded")
	}
	if b.ID != "" || b.State != "" || b.Times != nil {
		t.Fatalf("failed Create changed the build: %+v", b)
	}
	if n := len(listAll(t, db, buildrecord.Filter{})); n != 0 {
		t.Fatalf("%d builds stored", n)
	}
}
