// Package queue schedules the build service's jobs: first in, first out, at
// most MaxRunning at once and at most MaxQueue waiting, each job with its own
// context that Cancel, its timeout or Shutdown ends.
//
// It owns scheduling alone: what a job does and what its end means is the
// caller's (the service reads context.Cause to tell cancel, timeout and
// shutdown apart).
package queue
