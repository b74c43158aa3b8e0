package pipeline

import (
	"sync"
	"time"
)

// Phases is where the wall time of one package's build went, measured
// inside the pipeline. Phases of one package overlap (its layers are
// written while it compiles), so they need not add up to the whole.
type Phases struct {
	// Compile runs from the start of the package's first go build to the
	// end of its last, over all its platforms.
	Compile time.Duration
	// Layer runs from the start of building and compressing the package's
	// first layer to the end of assembling its last image.
	Layer time.Duration
	// Push is the time its Publisher took to publish it.
	Push time.Duration
}

// span is the wall time from the earliest start to the latest end of the
// intervals added to it, from any goroutine.
type span struct {
	mu       sync.Mutex
	from, to time.Time
}

// since adds the interval from start to now.
func (s *span) since(start time.Time) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.from.IsZero() || start.Before(s.from) {
		s.from = start
	}
	if now.After(s.to) {
		s.to = now
	}
}

func (s *span) duration() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.to.Sub(s.from)
}
