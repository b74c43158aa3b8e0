package pipeline

import (
	"errors"
	"sync"
)

var errSettled = errors.New("internal error: a lazy value was asked for after its run ended")

// future is a value being computed in its own goroutine.
type future[T any] struct {
	done chan struct{}
	v    T
	err  error
}

// goFuture runs f in its own goroutine and returns its future value.
func goFuture[T any](f func() (T, error)) *future[T] {
	fu := &future[T]{done: make(chan struct{})}
	go func() {
		defer close(fu.done)
		fu.v, fu.err = f()
	}()
	return fu
}

// wait blocks until the value is ready.
func (f *future[T]) wait() (T, error) {
	<-f.done
	return f.v, f.err
}

// lazy is a value computed, in its own goroutine, only once someone asks
// for it: a question most runs never ask costs them nothing.
type lazy[T any] struct {
	once sync.Once
	f    func() (T, error)
	fu   *future[T]
}

// onDemand returns f's value, computed only once someone waits for it.
func onDemand[T any](f func() (T, error)) *lazy[T] { return &lazy[T]{f: f} }

// wait starts the computation if nobody has yet, and blocks until it is done.
func (l *lazy[T]) wait() (T, error) {
	l.once.Do(func() { l.fu = goFuture(l.f) })
	if l.fu == nil {
		var zero T
		return zero, errSettled
	}
	return l.fu.wait()
}

// waitIfStarted blocks until the computation is done if it was started,
// and keeps anyone from starting it from now on, so that nothing it
// started outlives its caller.
func (l *lazy[T]) waitIfStarted() {
	l.once.Do(func() {}) // nobody may start it from now on
	if l.fu != nil {
		l.fu.wait()
	}
}

// gate holds back work that may start late, the destination's check and
// git's fingerprint of the checkout, until the first compile starts, so
// that on a small machine it does not take CPU from the path to go build.
// Whoever must wait for such work opens the gate first, so nothing waits
// on a gate that no compile will open.
type gate struct {
	once sync.Once
	ch   chan struct{}
}

func newGate() *gate { return &gate{ch: make(chan struct{})} }

// open lets the held-back work start; opening it again does nothing.
func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }
