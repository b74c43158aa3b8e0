package buildrecord

import (
	"errors"
	"fmt"
)

// Errors a store of records returns, to check with errors.Is.
var (
	// ErrNotFound: no build has that ID.
	ErrNotFound = errors.New("no such build")
	// ErrTransition: the move between two states is not allowed.
	ErrTransition = errors.New("state transition not allowed")
	// ErrFinal: the build is in a final state, which never changes.
	// Every ErrFinal is also an ErrTransition.
	ErrFinal = errors.New("build already finished")
)

// edges are the allowed moves between states. A queued build can start,
// be cancelled, or be interrupted by a shutdown; a running build can end
// in any final state; a final state never changes.
var edges = map[State][]State{
	Queued:  {Running, Cancelled, Interrupted},
	Running: {Succeeded, Failed, Cancelled, TimedOut, Interrupted},
}

// Allowed reports whether a build may move from one state to another.
func Allowed(from, to State) bool {
	for _, s := range edges[from] {
		if s == to {
			return true
		}
	}
	return false
}

// TransitionError is a refused move. errors.Is matches it to
// ErrTransition, and also to ErrFinal when the build had finished.
type TransitionError struct {
	ID       string
	From, To State
}

func (e *TransitionError) Error() string {
	if e.From.Final() {
		return fmt.Sprintf("build %s is already %s: it cannot become %s", e.ID, e.From, e.To)
	}
	return fmt.Sprintf("build %s is %s: it cannot become %s", e.ID, e.From, e.To)
}

func (e *TransitionError) Is(target error) bool {
	return target == ErrTransition || (target == ErrFinal && e.From.Final())
}
