package registry

import (
	"sync"
	"time"
)

// maxLoginRecords bounds the failed-login records kept. When full, new
// clients and names are not recorded (they are not slowed), but the
// bound on concurrent password checks still holds.
const maxLoginRecords = 1 << 16

// logins slows down password guessing: after Limits.FailedLogins failures
// of one client or one user name, each further try must wait, and the
// wait doubles with each failure up to Limits.MaxLoginBackoff. A success
// clears both records.
type logins struct {
	mu     sync.Mutex
	limits Limits
	recs   map[string]*loginRecord // "ip:ADDR" or "user:NAME"
}

type loginRecord struct {
	failures int
	until    time.Time // no try before this
	last     time.Time // the last failure
}

func newLogins(l Limits) *logins { return &logins{limits: l, recs: map[string]*loginRecord{}} }

// wait is how long the client or user must still wait before a try.
func (g *logins) wait(now time.Time, keys ...string) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	var w time.Duration
	for _, k := range keys {
		if r := g.recs[k]; r != nil && r.until.After(now) {
			w = max(w, r.until.Sub(now))
		}
	}
	return w
}

func (g *logins) failed(now time.Time, keys ...string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, k := range keys {
		r := g.recs[k]
		if r == nil {
			if len(g.recs) >= maxLoginRecords {
				continue
			}
			r = &loginRecord{}
			g.recs[k] = r
		}
		r.failures++
		r.last = now
		if over := r.failures - g.limits.FailedLogins; over >= 0 {
			d := g.limits.LoginBackoff << min(over, 30)
			if d <= 0 || d > g.limits.MaxLoginBackoff {
				d = g.limits.MaxLoginBackoff
			}
			r.until = now.Add(d)
		}
	}
}

func (g *logins) succeeded(keys ...string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, k := range keys {
		delete(g.recs, k)
	}
}

// forget drops records whose wait is over and whose last failure is older
// than the longest wait: they no longer slow anyone.
func (g *logins) forget(now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for k, r := range g.recs {
		if !r.until.After(now) && now.Sub(r.last) > g.limits.MaxLoginBackoff {
			delete(g.recs, k)
		}
	}
}
