package testutil

import (
	"sync"
	"time"
)

// Clock is a clock for tests: time moves only when Advance says so. It has
// the methods of registry.Clock.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	tickers []*ticker
}

type ticker struct {
	c       chan time.Time
	every   time.Duration
	next    time.Time
	stopped chan struct{}
}

// NewClock returns a clock that reads a fixed date.
func NewClock() *Clock { return &Clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Tick returns a channel that gets a tick each time Advance passes a
// multiple of d; stop ends it.
func (c *Clock) Tick(d time.Duration) (<-chan time.Time, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &ticker{c: make(chan time.Time), every: d, next: c.now.Add(d), stopped: make(chan struct{})}
	c.tickers = append(c.tickers, t)
	var once sync.Once
	return t.c, func() { once.Do(func() { close(t.stopped) }) }
}

// Advance moves the clock by d. For each ticker that came due it sends the
// tick and then the same tick again: the channel is unbuffered, so the
// second send completes only once the receiver has handled the first and
// come back for more. Advance thus returns after every due tick was
// handled, with no sleep.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	now := c.now
	var due []*ticker
	for _, t := range c.tickers {
		if !t.next.After(now) {
			due = append(due, t)
			for !t.next.After(now) {
				t.next = t.next.Add(t.every)
			}
		}
	}
	c.mu.Unlock()
	for _, t := range due {
		for range 2 {
			select {
			case t.c <- now:
			case <-t.stopped:
			}
		}
	}
}
