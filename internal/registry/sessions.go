package registry

import (
	"fmt"
	"sync"
	"time"

	"github.com/kilnbuild/kiln/internal/store"
)

// upload is a store upload plus what the HTTP session needs. Its mutex
// serialises requests to one upload.
type upload struct {
	mu       sync.Mutex
	up       *store.Upload
	client   string // whose session it is (Limits.UploadSessionsPerClient)
	lastUsed time.Time
	done     bool
}

// sessions is the table of open upload sessions: at most
// Limits.UploadSessionsPerClient per client and Limits.UploadSessions in
// all, each dropped once idle for longer than Limits.UploadTTL.
type sessions struct {
	limits Limits
	clock  Clock

	mu        sync.Mutex
	open      map[string]*upload
	perClient map[string]int // open sessions per client
	pending   int            // sessions reserved, not yet open
}

func newSessions(lim Limits, clock Clock) *sessions {
	return &sessions{limits: lim, clock: clock, open: map[string]*upload{}, perClient: map[string]int{}}
}

// reserve counts a new session of client against the limits.
func (s *sessions) reserve(client string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perClient[client] >= s.limits.UploadSessionsPerClient {
		return errTooMany(fmt.Sprintf("%d upload sessions open from %s: finish or cancel one first", s.perClient[client], client))
	}
	if len(s.open)+s.pending >= s.limits.UploadSessions {
		return errTooMany("too many upload sessions open: try again later")
	}
	s.perClient[client]++
	s.pending++
	return nil
}

// release gives back a place reserve took for a session that never
// started.
func (s *sessions) release(client string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending--
	s.dropClientLocked(client)
}

// add opens the session of up, in the place reserve took for client.
func (s *sessions) add(up *store.Upload, client string) {
	s.mu.Lock()
	s.pending--
	s.open[up.ID()] = &upload{up: up, client: client, lastUsed: s.clock.Now()}
	s.mu.Unlock()
}

func (s *sessions) dropClientLocked(client string) {
	if s.perClient[client]--; s.perClient[client] <= 0 {
		delete(s.perClient, client)
	}
}

// expire drops sessions idle for longer than Limits.UploadTTL. A session
// in use by a request is not idle.
func (s *sessions) expire() {
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, u := range s.open {
		if u.mu.TryLock() {
			if now.Sub(u.lastUsed) > s.limits.UploadTTL {
				u.up.Cancel()
				u.done = true
				delete(s.open, id)
				s.dropClientLocked(u.client)
			}
			u.mu.Unlock()
		}
	}
}

// find finds upload id of repository name and locks it.
func (s *sessions) find(name, id string) (*upload, error) {
	s.mu.Lock()
	u, ok := s.open[id]
	s.mu.Unlock()
	if !ok || u.up.Repository() != name {
		return nil, fmt.Errorf("%w: %q", store.ErrUploadUnknown, id)
	}
	u.mu.Lock()
	if u.done {
		u.mu.Unlock()
		return nil, fmt.Errorf("%w: %q", store.ErrUploadUnknown, id)
	}
	u.lastUsed = s.clock.Now()
	return u, nil
}

func (s *sessions) forget(u *upload) {
	u.done = true
	s.mu.Lock()
	if s.open[u.up.ID()] == u {
		delete(s.open, u.up.ID())
		s.dropClientLocked(u.client)
	}
	s.mu.Unlock()
}

// closeAll drops every open session.
func (s *sessions) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, u := range s.open {
		// One still receiving is left to its request; the next
		// start removes what it staged.
		if u.mu.TryLock() {
			u.up.Cancel()
			u.done = true
			u.mu.Unlock()
		}
		delete(s.open, id)
	}
	clear(s.perClient)
}
