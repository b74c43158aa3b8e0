package pipeline

// future is a value being computed in its own goroutine.
type future[T any] struct {
	done chan struct{}
	v    T
	err  error
}

func start[T any](f func() (T, error)) *future[T] {
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
