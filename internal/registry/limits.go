package registry

import (
	"net"
	"net/http"
	"runtime"
	"time"
)

// Limits bound what clients can make the registry hold. A zero field
// takes its default (DefaultLimits).
type Limits struct {
	// UploadSessions is the most upload sessions open at once, and
	// UploadSessionsPerClient the most one client (IP address) may have;
	// beyond them POST answers 429 TOOMANYREQUESTS.
	UploadSessions          int
	UploadSessionsPerClient int
	// UploadTTL is how long an upload session may sit idle before it is
	// dropped; a timer looks every UploadTTL/4.
	UploadTTL time.Duration
	// UploadMemory bounds the bytes of all uploads held in memory at once;
	// beyond it, uploads are staged on disk instead.
	UploadMemory int64
	// MaxBlobSize is the largest blob an upload may grow to (413 beyond).
	MaxBlobSize int64
	// PasswordChecks is the most bcrypt comparisons running at once.
	PasswordChecks int
	// FailedLogins is how many failed logins a client (IP address) or a
	// user name may have before it must wait; each further failure
	// doubles the wait, from LoginBackoff up to MaxLoginBackoff.
	FailedLogins    int
	LoginBackoff    time.Duration
	MaxLoginBackoff time.Duration
}

// DefaultLimits are the limits a zero Limits gets.
var DefaultLimits = Limits{
	UploadSessions:          1000,
	UploadSessionsPerClient: 100,
	UploadTTL:               15 * time.Minute,
	UploadMemory:            64 << 20,
	MaxBlobSize:             16 << 30,
	PasswordChecks:          max(1, runtime.GOMAXPROCS(0)/2),
	FailedLogins:            5,
	LoginBackoff:            time.Second,
	MaxLoginBackoff:         5 * time.Minute,
}

// withDefaults fills zero fields from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	set := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&l.UploadSessions, d.UploadSessions)
	set(&l.UploadSessionsPerClient, d.UploadSessionsPerClient)
	set(&l.PasswordChecks, d.PasswordChecks)
	set(&l.FailedLogins, d.FailedLogins)
	for _, p := range []struct{ v, def *time.Duration }{
		{&l.UploadTTL, &d.UploadTTL}, {&l.LoginBackoff, &d.LoginBackoff}, {&l.MaxLoginBackoff, &d.MaxLoginBackoff},
	} {
		if *p.v <= 0 {
			*p.v = *p.def
		}
	}
	if l.UploadMemory <= 0 {
		l.UploadMemory = d.UploadMemory
	}
	if l.MaxBlobSize <= 0 {
		l.MaxBlobSize = d.MaxBlobSize
	}
	return l
}

// Clock is the registry's time: real in production, driven by tests.
type Clock interface {
	Now() time.Time
	// Tick delivers ticks every d until stop is called.
	Tick(d time.Duration) (ticks <-chan time.Time, stop func())
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Tick(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

// clientOf names the client a request comes from: its IPv4 address, or
// the /64 network of its IPv6 address (one host commonly holds a whole
// /64). Headers such as X-Forwarded-For are not trusted.
func clientOf(req *http.Request) string {
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		return req.RemoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.To4() != nil {
		return host
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

func errTooMany(msg string) *apiError {
	return &apiError{Status: http.StatusTooManyRequests, Code: "TOOMANYREQUESTS", Message: msg}
}

// sweep runs every period until Close: it drops idle upload sessions and
// forgets login failures that no longer count.
func (r *Registry) sweep(ticks <-chan time.Time, stop func()) {
	defer close(r.swept)
	defer stop()
	for {
		select {
		case <-r.closing:
			return
		case <-ticks:
			r.sessions.expire()
			r.auth.logins.forget(r.clock.Now())
		}
	}
}

// Close stops the registry's timer and drops the open upload sessions.
func (r *Registry) Close() error {
	r.closeOnce.Do(func() {
		close(r.closing)
		<-r.swept
		r.sessions.closeAll()
	})
	return nil
}
