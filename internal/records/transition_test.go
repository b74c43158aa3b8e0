package records

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kilnbuild/kiln/internal/buildrecord"
	"github.com/kilnbuild/kiln/internal/testutil"
)

var allStates = []buildrecord.State{buildrecord.Queued, buildrecord.Running, buildrecord.Succeeded, buildrecord.Failed, buildrecord.Cancelled, buildrecord.TimedOut, buildrecord.Interrupted}

// pathTo is how a new build reaches each state.
var pathTo = map[buildrecord.State][]buildrecord.State{
	buildrecord.Queued:      nil,
	buildrecord.Running:     {buildrecord.Running},
	buildrecord.Succeeded:   {buildrecord.Running, buildrecord.Succeeded},
	buildrecord.Failed:      {buildrecord.Running, buildrecord.Failed},
	buildrecord.Cancelled:   {buildrecord.Cancelled},
	buildrecord.TimedOut:    {buildrecord.Running, buildrecord.TimedOut},
	buildrecord.Interrupted: {buildrecord.Interrupted},
}

// Every pair of states: the allowed edges move the build and record the
// time; the others are refused with ErrTransition (and ErrFinal from a
// final state) and change nothing.
func TestTransitionEdges(t *testing.T) {
	allowed := map[[2]buildrecord.State]bool{
		{buildrecord.Queued, buildrecord.Running}: true, {buildrecord.Queued, buildrecord.Cancelled}: true, {buildrecord.Queued, buildrecord.Interrupted}: true,
		{buildrecord.Running, buildrecord.Succeeded}: true, {buildrecord.Running, buildrecord.Failed}: true, {buildrecord.Running, buildrecord.Cancelled}: true,
		{buildrecord.Running, buildrecord.TimedOut}: true, {buildrecord.Running, buildrecord.Interrupted}: true,
	}
	clock := testutil.NewClock()
	db, _ := open(t, WithClock(clock.Now))
	ctx := context.Background()
	for _, from := range allStates {
		for _, to := range append(allStates, "bogus") {
			t.Run(string(from)+"→"+string(to), func(t *testing.T) {
				b := mustCreate(t, db, newBuild("git", "./cmd/app"))
				for _, s := range pathTo[from] {
					clock.Advance(time.Second)
					if _, err := db.Transition(ctx, b.ID, s, clock.Now(), nil); err != nil {
						t.Fatal(err)
					}
				}
				before, _ := db.Get(ctx, b.ID)
				clock.Advance(time.Second)
				at := clock.Now()
				got, err := db.Transition(ctx, b.ID, to, at, func(b *buildrecord.Build) { b.Error = &buildrecord.Error{Message: "set"} })
				stored, _ := db.Get(ctx, b.ID)
				if allowed[[2]buildrecord.State{from, to}] {
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
					if got.State != to || stored.State != to || !stored.Times[to].Equal(at) || stored.Error == nil {
						t.Fatalf("stored %+v", stored)
					}
					if len(stored.Times) != len(before.Times)+1 {
						t.Fatalf("times %v, before %v", stored.Times, before.Times)
					}
					return
				}
				if !errors.Is(err, buildrecord.ErrTransition) {
					t.Fatalf("err = %v, want ErrTransition", err)
				}
				if errors.Is(err, buildrecord.ErrFinal) != from.Final() {
					t.Fatalf("err = %v: ErrFinal is %v, want %v", err, errors.Is(err, buildrecord.ErrFinal), from.Final())
				}
				var te *buildrecord.TransitionError
				if !errors.As(err, &te) || te.From != from || te.To != to || te.ID != b.ID {
					t.Fatalf("err = %#v", err)
				}
				if stored.State != from || len(stored.Times) != len(before.Times) || stored.Error != nil {
					t.Fatalf("a refused move changed the build: %+v", stored)
				}
			})
		}
	}
}

func TestTransitionUpdate(t *testing.T) {
	db, _ := open(t)
	ctx := context.Background()
	b := mustCreate(t, db, newBuild("module", "./cmd/app"))
	if _, err := db.Transition(ctx, "ffffffffffffffffffff", buildrecord.Running, time.Now(), nil); !errors.Is(err, buildrecord.ErrNotFound) {
		t.Fatalf("missing build: %v, want ErrNotFound", err)
	}
	if _, err := db.Transition(ctx, b.ID, buildrecord.Running, time.Time{}, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("no time: %v, want ErrInvalid", err)
	}
	if _, _, err := db.Recover(ctx, time.Time{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Recover at no time: %v, want ErrInvalid", err)
	}
	if _, err := db.Transition(ctx, b.ID, buildrecord.Running, time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 5, 6, 7, 8, 9, 10, time.FixedZone("x", 3600))
	got, err := db.Transition(ctx, b.ID, buildrecord.Succeeded, at, func(u *buildrecord.Build) {
		u.Results = []buildrecord.Result{{ImportPath: "example.com/app/cmd/app", Ref: "r@sha256:1", Digest: "sha256:1",
			Images: []buildrecord.Image{{Platform: "linux/amd64", Digest: "sha256:2", Bytes: 42}}}}
		u.Phases.Compile = buildrecord.Duration(1500 * time.Millisecond)
		u.Source.Revision = "v1.2.3"
		// These are the store's to keep:
		u.Times[buildrecord.Queued] = time.Time{}
		u.ID, u.State, u.Times = "x", buildrecord.Failed, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := db.Get(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []*buildrecord.Build{got, stored} {
		if x.ID != b.ID || x.State != buildrecord.Succeeded || len(x.Times) != 3 || !x.Times[buildrecord.Succeeded].Equal(at) || !x.Times[buildrecord.Queued].Equal(b.Times[buildrecord.Queued]) ||
			len(x.Results) != 1 || x.Results[0].Images[0].Bytes != 42 || x.Phases.Compile != buildrecord.Duration(1500*time.Millisecond) ||
			x.Source.Revision != "v1.2.3" {
			t.Errorf("after update: %+v", x)
		}
	}
	// The state column follows the document: the filter finds it.
	p, err := db.List(ctx, buildrecord.Filter{State: buildrecord.Succeeded})
	if err != nil || len(p.Builds) != 1 {
		t.Fatalf("List succeeded: %d, %v", len(p.Builds), err)
	}
}

// Many goroutines race to end each build: exactly one wins per build,
// the others get ErrFinal, while Creates and Lists run alongside.
func TestTransitionConcurrent(t *testing.T) {
	db, _ := open(t)
	ctx := context.Background()
	const builds, racers = 20, 6
	var all []*buildrecord.Build
	for range builds {
		b := mustCreate(t, db, newBuild("git", "./cmd/app"))
		if _, err := db.Transition(ctx, b.ID, buildrecord.Running, time.Now(), nil); err != nil {
			t.Fatal(err)
		}
		all = append(all, b)
	}
	ends := []buildrecord.State{buildrecord.Succeeded, buildrecord.Failed, buildrecord.Cancelled, buildrecord.TimedOut, buildrecord.Interrupted, buildrecord.Succeeded}
	var wins atomic.Int64
	var wg sync.WaitGroup
	for _, b := range all {
		for r := range racers {
			wg.Go(func() {
				_, err := db.Transition(ctx, b.ID, ends[r], time.Now(), func(u *buildrecord.Build) { u.Error = &buildrecord.Error{Message: string(ends[r])} })
				switch {
				case err == nil:
					wins.Add(1)
				case !errors.Is(err, buildrecord.ErrFinal):
					t.Errorf("racer: %v", err)
				}
			})
		}
		wg.Go(func() {
			if err := db.Create(ctx, newBuild("module", "./cmd/other")); err != nil {
				t.Error(err)
			}
			if _, err := db.AppendLog(ctx, b.ID, "a line\n"); err != nil {
				t.Error(err)
			}
			if _, err := db.List(ctx, buildrecord.Filter{Limit: 5}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != builds {
		t.Fatalf("%d wins, want %d", wins.Load(), builds)
	}
	for _, b := range all {
		got, err := db.Get(ctx, b.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !got.State.Final() || got.Error == nil || got.Error.Message != string(got.State) || len(got.Times) != 3 {
			t.Errorf("build %s: %+v", b.ID, got)
		}
	}
	if n := len(listAll(t, db, buildrecord.Filter{})); n != 2*builds {
		t.Fatalf("%d builds, want %d", n, 2*builds)
	}
}

// After a restart, builds that were running are interrupted (with the
// time and an error), queued builds come back oldest first, and the
// finished ones are left alone.
func TestRecoverAfterRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "records.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	q1 := mustCreate(t, db, newBuild("git", "./a"))
	r1 := mustCreate(t, db, newBuild("git", "./b"))
	q2 := mustCreate(t, db, newBuild("git", "./c"))
	done := mustCreate(t, db, newBuild("git", "./d"))
	r2 := mustCreate(t, db, newBuild("git", "./e"))
	for _, id := range []string{r1.ID, done.ID, r2.ID} {
		if _, err := db.Transition(ctx, id, buildrecord.Running, time.Now(), nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Transition(ctx, done.ID, buildrecord.Succeeded, time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AppendLog(ctx, r1.ID, "compiling\n"); err != nil {
		t.Fatal(err)
	}
	db.Close() // the process dies

	db, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	at := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
	queued, interrupted, err := db.Recover(ctx, at)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(queued), []string{q1.ID, q2.ID}; !slices.Equal(got, want) {
		t.Errorf("queued %q, want %q", got, want)
	}
	if got, want := ids(interrupted), []string{r1.ID, r2.ID}; !slices.Equal(got, want) {
		t.Errorf("interrupted %q, want %q", got, want)
	}
	for _, id := range []string{r1.ID, r2.ID} {
		b, err := db.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if b.State != buildrecord.Interrupted || !b.Times[buildrecord.Interrupted].Equal(at) || b.Error == nil || b.Times[buildrecord.Running].IsZero() {
			t.Errorf("after Recover: %+v", b)
		}
	}
	if b, _ := db.Get(ctx, done.ID); b.State != buildrecord.Succeeded {
		t.Errorf("finished build became %s", b.State)
	}
	if log, err := db.Log(ctx, r1.ID, 0); err != nil || len(log) != 1 {
		t.Errorf("log after restart: %v, %v", log, err)
	}
	// A second Recover finds nothing more to interrupt.
	if _, again, err := db.Recover(ctx, at); err != nil || len(again) != 0 {
		t.Errorf("second Recover interrupted %d (%v)", len(again), err)
	}
	// New builds still sort after the old ones.
	if n := mustCreate(t, db, newBuild("git", "./f")); n.ID <= r2.ID {
		t.Errorf("new ID %s not after %s", n.ID, r2.ID)
	}
}
