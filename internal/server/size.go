package server

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
)

// sizeVar defines a flag of a byte count: a number with an optional
// suffix B, KiB, MiB or GiB (1024-based). Its default is *p.
func sizeVar(fs *flag.FlagSet, p *int64, name, usage string) {
	fs.Var((*size)(p), name, usage+" (e.g. 512KiB, 64MiB)")
}

type size int64

func (s *size) String() string {
	n := int64(*s)
	for _, u := range []struct {
		suffix string
		shift  uint
	}{{"GiB", 30}, {"MiB", 20}, {"KiB", 10}} {
		if n != 0 && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

func (s *size) Set(v string) error {
	shift := uint(0)
	num := v
	for _, u := range []struct {
		suffix string
		shift  uint
	}{{"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"B", 0}} {
		if n, ok := strings.CutSuffix(v, u.suffix); ok {
			num, shift = n, u.shift
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n < 0 || n > (1<<62)>>shift {
		return fmt.Errorf("want a byte count such as 512KiB or 64MiB, not %q", v)
	}
	*s = size(n << shift)
	return nil
}
