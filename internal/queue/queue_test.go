package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// gate is a job body the test controls: started says Run began, release
// lets it return, and cause reports why its context ended (nil if it
// returned on release).
type gate struct {
	id      string
	started chan struct{}
	release chan struct{}
	ended   chan error
}

func newGate(id string) *gate {
	return &gate{id: id, started: make(chan struct{}), release: make(chan struct{}), ended: make(chan error, 1)}
}

func (g *gate) job() Job {
	return Job{ID: g.id, Run: func(ctx context.Context) {
		close(g.started)
		select {
		case <-g.release:
			g.ended <- nil
		case <-ctx.Done():
			g.ended <- context.Cause(ctx)
		}
	}}
}

// noWorkersLeft fails if a worker or a job body of this package still runs.
// A worker that has called done.Done may still be on its way out, so the
// check yields and looks again a bounded number of times (no sleep).
func noWorkersLeft(t *testing.T) {
	t.Helper()
	var buf bytes.Buffer
	for range 10000 {
		buf.Reset()
		pprof.Lookup("goroutine").WriteTo(&buf, 1)
		if !strings.Contains(buf.String(), "queue.(*Queue).work") && !strings.Contains(buf.String(), "queue.(*gate).job") {
			return
		}
		runtime.Gosched()
	}
	t.Errorf("a worker or job is left after Shutdown:\n%s", buf.String())
}

// closing waits until Shutdown has closed the queue, without sleeping.
func closing(q *Queue) {
	for q.Alive() {
		runtime.Gosched()
	}
}

func TestFIFOOneAtATime(t *testing.T) {
	q := New(Config{MaxRunning: 1, MaxQueue: 10})
	var mu sync.Mutex
	var order []string
	first := newGate("first")
	if err := q.Submit(first.job()); err != nil {
		t.Fatal(err)
	}
	<-first.started
	all := make(chan struct{})
	for i := range 5 {
		id := fmt.Sprint(i)
		err := q.Submit(Job{ID: id, Run: func(context.Context) {
			mu.Lock()
			order = append(order, id)
			n := len(order)
			mu.Unlock()
			if n == 5 {
				close(all)
			}
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	if s := q.Stats(); s != (Stats{Waiting: 5, Running: 1}) {
		t.Errorf("Stats = %+v, want 5 waiting and 1 running", s)
	}
	close(first.release)
	<-all
	if want := []string{"0", "1", "2", "3", "4"}; !slices.Equal(order, want) {
		t.Errorf("ran %v, want %v", order, want)
	}
	q.Shutdown(context.Background())
	noWorkersLeft(t)
}

func TestAtMostMaxRunning(t *testing.T) {
	q := New(Config{MaxRunning: 2, MaxQueue: 10})
	gates := []*gate{newGate("a"), newGate("b"), newGate("c")}
	for _, g := range gates {
		if err := q.Submit(g.job()); err != nil {
			t.Fatal(err)
		}
	}
	<-gates[0].started
	<-gates[1].started
	if s := q.Stats(); s != (Stats{Waiting: 1, Running: 2}) {
		t.Errorf("Stats = %+v, want 1 waiting and 2 running", s)
	}
	close(gates[0].release)
	<-gates[2].started // the third starts only once a slot is free
	close(gates[1].release)
	close(gates[2].release)
	q.Shutdown(context.Background())
	noWorkersLeft(t)
}

func TestFullQueue(t *testing.T) {
	q := New(Config{MaxRunning: 1, MaxQueue: 2})
	defer q.Shutdown(context.Background())
	busy := newGate("busy")
	defer close(busy.release)
	q.Submit(busy.job())
	<-busy.started
	t1, err := q.Reserve()
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Submit(Job{ID: "w", Run: func(context.Context) {}}); err != nil {
		t.Fatal(err)
	}
	// One waiting and one reserved: the queue is full.
	if _, err := q.Reserve(); !errors.Is(err, ErrFull) {
		t.Fatalf("Reserve on a full queue: %v, want ErrFull", err)
	}
	if err := q.Submit(Job{ID: "x"}); !errors.Is(err, ErrFull) {
		t.Fatalf("Submit on a full queue: %v, want ErrFull", err)
	}
	t1.Release()
	t1.Release() // a second release gives back nothing
	t2, err := q.Reserve()
	if err != nil {
		t.Fatalf("Reserve after Release: %v", err)
	}
	if _, err := q.Reserve(); !errors.Is(err, ErrFull) {
		t.Fatalf("a double Release freed two places: %v", err)
	}
	t2.Release()
}

func TestRestorePastTheBound(t *testing.T) {
	q := New(Config{MaxRunning: 1, MaxQueue: 1})
	busy := newGate("busy")
	q.Submit(busy.job())
	<-busy.started
	ran := make(chan string, 3)
	var jobs []Job
	for _, id := range []string{"r1", "r2", "r3"} {
		jobs = append(jobs, Job{ID: id, Run: func(context.Context) { ran <- id }})
	}
	if err := q.Restore(jobs); err != nil {
		t.Fatal(err)
	}
	if s := q.Stats(); s.Waiting != 3 {
		t.Errorf("Waiting = %d after Restore, want 3", s.Waiting)
	}
	close(busy.release)
	for _, want := range []string{"r1", "r2", "r3"} {
		if got := <-ran; got != want {
			t.Errorf("ran %s, want %s", got, want)
		}
	}
	q.Shutdown(context.Background())
}

func TestCancelWaiting(t *testing.T) {
	q := New(Config{MaxRunning: 1, MaxQueue: 10})
	busy := newGate("busy")
	q.Submit(busy.job())
	<-busy.started
	ran := make(chan string, 2)
	for _, id := range []string{"gone", "kept"} {
		q.Submit(Job{ID: id, Run: func(context.Context) { ran <- id }})
	}
	if got := q.Cancel("gone"); got != Waiting {
		t.Fatalf("Cancel of a waiting job = %v, want Waiting", got)
	}
	if got := q.Cancel("gone"); got != Absent {
		t.Errorf("second Cancel = %v, want Absent", got)
	}
	close(busy.release)
	if got := <-ran; got != "kept" {
		t.Errorf("ran %q, want kept: a cancelled job ran", got)
	}
	q.Shutdown(context.Background())
	if len(ran) != 0 {
		t.Errorf("a cancelled job ran")
	}
}

func TestCancelRunning(t *testing.T) {
	q := New(Config{MaxRunning: 1})
	g := newGate("g")
	q.Submit(g.job())
	<-g.started
	if got := q.Cancel("g"); got != Running {
		t.Fatalf("Cancel of a running job = %v, want Running", got)
	}
	if err := <-g.ended; !errors.Is(err, ErrCancelled) {
		t.Errorf("cause = %v, want ErrCancelled", err)
	}
	if got := q.Cancel("unknown"); got != Absent {
		t.Errorf("Cancel of an unknown job = %v, want Absent", got)
	}
	q.Shutdown(context.Background())
	noWorkersLeft(t)
}

func TestTimeout(t *testing.T) {
	q := New(Config{MaxRunning: 1})
	g := newGate("slow")
	j := g.job()
	j.Timeout = time.Nanosecond
	q.Submit(j)
	if err := <-g.ended; !errors.Is(err, ErrTimeout) {
		t.Errorf("cause = %v, want ErrTimeout", err)
	}
	q.Shutdown(context.Background())
}

// Shutdown with a grace that does not run out waits for running jobs,
// and drops the waiting ones without running them.
func TestShutdownLetsRunningFinish(t *testing.T) {
	q := New(Config{MaxRunning: 1, MaxQueue: 10})
	g := newGate("running")
	q.Submit(g.job())
	<-g.started
	q.Submit(Job{ID: "waiting", Run: func(context.Context) { t.Error("a waiting job ran during shutdown") }})
	reported := make(chan Report)
	go func() { reported <- q.Shutdown(context.Background()) }()
	closing(q)
	if err := q.Submit(Job{ID: "late"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Submit during shutdown: %v, want ErrClosed", err)
	}
	close(g.release)
	r := <-reported
	if err := <-g.ended; err != nil {
		t.Errorf("a job that finished in its grace was cancelled: %v", err)
	}
	if len(r.Cut) != 0 || !slices.Equal(r.Dropped, []string{"waiting"}) {
		t.Errorf("Report = %+v, want nothing cut and [waiting] dropped", r)
	}
	if q.Alive() {
		t.Error("Alive after Shutdown")
	}
	noWorkersLeft(t)
}

// When the grace is over, the running jobs are cancelled with ErrShutdown
// and reported as cut.
func TestShutdownCutsAfterGrace(t *testing.T) {
	q := New(Config{MaxRunning: 2, MaxQueue: 10})
	a, b := newGate("a"), newGate("b")
	q.Submit(a.job())
	q.Submit(b.job())
	<-a.started
	<-b.started
	grace, over := context.WithCancel(context.Background())
	over()
	r := q.Shutdown(grace)
	if !slices.Equal(r.Cut, []string{"a", "b"}) {
		t.Errorf("Cut = %v, want [a b]", r.Cut)
	}
	for _, g := range []*gate{a, b} {
		if err := <-g.ended; !errors.Is(err, ErrShutdown) {
			t.Errorf("%s: cause %v, want ErrShutdown", g.id, err)
		}
	}
	if _, err := q.Reserve(); !errors.Is(err, ErrClosed) {
		t.Errorf("Reserve after Shutdown: %v, want ErrClosed", err)
	}
	noWorkersLeft(t)
}

// A ticket held across Shutdown cannot put its job in.
func TestTicketAfterShutdown(t *testing.T) {
	q := New(Config{MaxRunning: 1})
	tk, err := q.Reserve()
	if err != nil {
		t.Fatal(err)
	}
	q.Shutdown(context.Background())
	if err := tk.Submit(Job{ID: "x", Run: func(context.Context) { t.Error("ran after Shutdown") }}); !errors.Is(err, ErrClosed) {
		t.Errorf("Submit after Shutdown: %v, want ErrClosed", err)
	}
	if err := q.Restore([]Job{{ID: "y"}}); !errors.Is(err, ErrClosed) {
		t.Errorf("Restore after Shutdown: %v, want ErrClosed", err)
	}
}

func TestDefaults(t *testing.T) {
	q := New(Config{})
	defer q.Shutdown(context.Background())
	if want := max(1, runtime.NumCPU()/2); q.MaxRunning() != want {
		t.Errorf("MaxRunning = %d, want %d", q.MaxRunning(), want)
	}
	if q.maxQueue != DefaultMaxQueue {
		t.Errorf("MaxQueue = %d, want %d", q.maxQueue, DefaultMaxQueue)
	}
	if !q.Alive() {
		t.Error("a new queue is not Alive")
	}
}
