package pipeline

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// progress serialises human-readable lines from concurrent builds.
type progress struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *progress) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "kiln: "+format+"\n", args...)
}

func bytesize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }
