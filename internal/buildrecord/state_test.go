package buildrecord

import (
	"errors"
	"testing"
)

func TestStates(t *testing.T) {
	all := []State{Queued, Running, Succeeded, Failed, Cancelled, TimedOut, Interrupted}
	for _, s := range all {
		if !s.Valid() {
			t.Errorf("%s is not valid", s)
		}
		for _, to := range all {
			if s.Final() && Allowed(s, to) {
				t.Errorf("%s is final but may become %s", s, to)
			}
		}
	}
	if State("done").Valid() || Allowed(Succeeded, Running) || !Allowed(Queued, Running) || !Allowed(Running, Interrupted) {
		t.Error("the state machine changed")
	}
	err := error(&TransitionError{ID: "b1", From: Succeeded, To: Running})
	if !errors.Is(err, ErrTransition) || !errors.Is(err, ErrFinal) {
		t.Errorf("%v is not ErrTransition and ErrFinal", err)
	}
	if errors.Is(&TransitionError{ID: "b1", From: Queued, To: Succeeded}, ErrFinal) {
		t.Error("a refused move from queued is ErrFinal")
	}
}
