package queue

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"
	"time"
)

// The causes of a job's context ending, as context.Cause reports them.
var (
	// ErrCancelled: Cancel was called for the job.
	ErrCancelled = errors.New("cancelled")
	// ErrTimeout: the job ran longer than its Timeout.
	ErrTimeout = errors.New("timed out")
	// ErrShutdown: Shutdown's grace ran out while the job was running.
	ErrShutdown = errors.New("server shutting down")
)

// Errors of Reserve and Submit.
var (
	// ErrFull: MaxQueue jobs are already waiting; try again later.
	ErrFull = errors.New("build queue is full: try again later")
	// ErrClosed: Shutdown was called; no job is taken any more.
	ErrClosed = errors.New("build queue is shut down")
)

// DefaultMaxQueue is MaxQueue when Config leaves it zero.
const DefaultMaxQueue = 100

// Config bounds a Queue. Zero fields take their defaults.
type Config struct {
	// MaxRunning is how many jobs run at once: by default half the CPUs,
	// at least 1.
	MaxRunning int
	// MaxQueue is how many jobs may wait: by default DefaultMaxQueue.
	MaxQueue int
}

// Job is one unit of work.
type Job struct {
	ID string // unique among the queue's waiting and running jobs
	// Timeout bounds Run from when it starts; 0 means no bound.
	Timeout time.Duration
	// Run does the work. Its ctx ends on Cancel (cause ErrCancelled),
	// on Timeout (ErrTimeout) or when Shutdown's grace runs out
	// (ErrShutdown); Run must return soon after.
	Run func(ctx context.Context)
}

// Queue runs jobs first in, first out on a fixed set of workers.
type Queue struct {
	maxRunning, maxQueue int

	mu       sync.Mutex
	cond     *sync.Cond // signalled when a job waits or the queue closes
	waiting  []Job
	reserved int // slots held by Tickets not yet submitted
	running  map[string]context.CancelCauseFunc
	closed   bool
	workers  int // live worker goroutines
	done     sync.WaitGroup
}

// New starts a queue's workers; Shutdown stops them.
func New(cfg Config) *Queue {
	q := &Queue{
		maxRunning: cfg.MaxRunning,
		maxQueue:   cfg.MaxQueue,
		running:    map[string]context.CancelCauseFunc{},
	}
	if q.maxRunning <= 0 {
		q.maxRunning = max(1, runtime.NumCPU()/2)
	}
	if q.maxQueue <= 0 {
		q.maxQueue = DefaultMaxQueue
	}
	q.cond = sync.NewCond(&q.mu)
	q.workers = q.maxRunning
	q.done.Add(q.maxRunning)
	for slot := range q.maxRunning {
		go q.work(slot)
	}
	return q
}

// MaxRunning is how many jobs run at once.
func (q *Queue) MaxRunning() int { return q.maxRunning }

// work is worker slot's loop: it runs one job at a time.
func (q *Queue) work(slot int) {
	defer q.done.Done()
	for {
		q.mu.Lock()
		for len(q.waiting) == 0 && !q.closed {
			q.cond.Wait()
		}
		if q.closed {
			q.workers--
			q.mu.Unlock()
			return
		}
		j := q.waiting[0]
		q.waiting[0] = Job{}
		q.waiting = q.waiting[1:]
		ctx, cancel := context.WithCancelCause(context.WithValue(context.Background(), slotKey{}, slot))
		q.running[j.ID] = cancel
		q.mu.Unlock()

		q.run(ctx, j)

		q.mu.Lock()
		delete(q.running, j.ID)
		q.mu.Unlock()
		cancel(nil)
	}
}

func (q *Queue) run(ctx context.Context, j Job) {
	if j.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, j.Timeout, ErrTimeout)
		defer cancel()
	}
	j.Run(ctx)
}

type slotKey struct{}

// Slot is the worker slot, 0 ≤ slot < MaxRunning, that runs the job whose
// context ctx is (or derives from); ok is false for a context the queue
// did not make. A slot runs one job at a time, and a job's Run returns
// before its slot takes the next one: a job may keep per-slot state (a
// build directory at a stable path) that no other job touches meanwhile.
func Slot(ctx context.Context) (slot int, ok bool) {
	slot, ok = ctx.Value(slotKey{}).(int)
	return slot, ok
}

// Ticket is a place in the queue, held while the caller prepares the job
// (e.g. creates its record), so that a full queue is known before.
type Ticket struct {
	q    *Queue
	once sync.Once
}

// Reserve holds a place for one job: ErrFull when MaxQueue jobs wait,
// ErrClosed after Shutdown. The caller must Submit or Release the ticket.
func (q *Queue) Reserve() (*Ticket, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil, ErrClosed
	}
	if len(q.waiting)+q.reserved >= q.maxQueue {
		return nil, ErrFull
	}
	q.reserved++
	return &Ticket{q: q}, nil
}

// Submit puts j at the end of the queue in the ticket's place: ErrClosed
// if Shutdown came first (then j never runs). A ticket is used once.
func (t *Ticket) Submit(j Job) error {
	err := ErrClosed
	t.once.Do(func() {
		q := t.q
		q.mu.Lock()
		defer q.mu.Unlock()
		q.reserved--
		if q.closed {
			return
		}
		q.waiting = append(q.waiting, j)
		q.cond.Signal()
		err = nil
	})
	return err
}

// Release gives the ticket's place back; after Submit it does nothing.
func (t *Ticket) Release() {
	t.once.Do(func() {
		t.q.mu.Lock()
		t.q.reserved--
		t.q.mu.Unlock()
	})
}

// Submit puts j at the end of the queue: Reserve and Ticket.Submit at once.
func (q *Queue) Submit(j Job) error {
	t, err := q.Reserve()
	if err != nil {
		return err
	}
	return t.Submit(j)
}

// Restore puts jobs at the end of the queue in order, past MaxQueue if
// need be: it is for jobs that were accepted before a restart.
func (q *Queue) Restore(jobs []Job) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrClosed
	}
	q.waiting = append(q.waiting, jobs...)
	q.cond.Broadcast()
	return nil
}

// Where a job was when Cancel found it.
type Where int

const (
	// Absent: the queue does not hold the job (finished or unknown).
	Absent Where = iota
	// Waiting: the job was taken out of the queue; Run is never called.
	Waiting
	// Running: the job's context was cancelled with ErrCancelled.
	Running
)

// Cancel ends the job id: a waiting one leaves the queue and never runs;
// a running one's context is cancelled with ErrCancelled.
func (q *Queue) Cancel(id string) Where {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, j := range q.waiting {
		if j.ID == id {
			q.waiting = append(q.waiting[:i], q.waiting[i+1:]...)
			return Waiting
		}
	}
	if cancel, ok := q.running[id]; ok {
		cancel(ErrCancelled)
		return Running
	}
	return Absent
}

// Stats are the queue's current numbers.
type Stats struct {
	Waiting, Running int
}

// Stats reports how many jobs wait and run now.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	return Stats{Waiting: len(q.waiting), Running: len(q.running)}
}

// Alive reports whether every worker is there to take jobs.
func (q *Queue) Alive() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return !q.closed && q.workers == q.maxRunning
}

// Report is what Shutdown did.
type Report struct {
	// Cut are the jobs still running when the grace ran out: their
	// contexts were cancelled with ErrShutdown.
	Cut []string
	// Dropped are the jobs that were waiting: they never ran.
	Dropped []string
}

// Shutdown stops taking jobs and drops the waiting ones, lets the running
// ones finish until grace is done, then cancels those left with ErrShutdown
// and waits for them to return. When it returns, no worker is left.
func (q *Queue) Shutdown(grace context.Context) Report {
	var r Report
	q.mu.Lock()
	q.closed = true
	for _, j := range q.waiting {
		r.Dropped = append(r.Dropped, j.ID)
	}
	q.waiting = nil
	q.cond.Broadcast()
	q.mu.Unlock()

	finished := make(chan struct{})
	go func() {
		q.done.Wait()
		close(finished)
	}()
	select {
	case <-finished:
		return r
	case <-grace.Done():
	}
	q.mu.Lock()
	for id, cancel := range q.running {
		r.Cut = append(r.Cut, id)
		cancel(ErrShutdown)
	}
	q.mu.Unlock()
	slices.Sort(r.Cut)
	<-finished
	return r
}
