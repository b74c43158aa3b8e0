// Package queue schedules the build service's jobs: first in, first out, at
// most MaxRunning at once and at most MaxQueue waiting, each job with its own
// context that Cancel, its timeout or Shutdown ends. Each of the MaxRunning
// workers is a slot (Slot reads it from a job's context) that runs one job
// at a time, so a job may keep state per slot.
//
// It owns scheduling alone: what a job does and what its end means is the
// caller's (the service reads context.Cause to tell cancel, timeout and
// shutdown apart).
package queue
