package queue

import (
	"context"
	"testing"
)

// TestSlots: jobs running at once have distinct slots below MaxRunning,
// and a job that follows another on a worker gets that worker's slot.
func TestSlots(t *testing.T) {
	q := New(Config{MaxRunning: 2})
	defer q.Shutdown(context.Background())
	slots := map[string]chan int{}
	gates := map[string]*gate{}
	for _, id := range []string{"a", "b", "c"} {
		g := newGate(id)
		gates[id] = g
		got := make(chan int, 1)
		slots[id] = got
		j := g.job()
		run := j.Run
		j.Run = func(ctx context.Context) {
			s, ok := Slot(ctx)
			if !ok {
				t.Errorf("job %s: no slot in its context", id)
			}
			got <- s
			run(ctx)
		}
		if err := q.Submit(j); err != nil {
			t.Fatal(err)
		}
	}
	<-gates["a"].started
	<-gates["b"].started
	sa, sb := <-slots["a"], <-slots["b"]
	if sa == sb || min(sa, sb) < 0 || max(sa, sb) > 1 {
		t.Fatalf("two running jobs have slots %d and %d, want 0 and 1", sa, sb)
	}
	close(gates["a"].release)
	<-gates["c"].started
	if sc := <-slots["c"]; sc != sa {
		t.Errorf("the job after a has slot %d, want a's freed slot %d (b's %d still runs)", sc, sa, sb)
	}
	close(gates["b"].release)
	close(gates["c"].release)
}

func TestSlotOutsideQueue(t *testing.T) {
	if s, ok := Slot(context.Background()); ok {
		t.Errorf("Slot(Background) = %d, true; want false", s)
	}
}
