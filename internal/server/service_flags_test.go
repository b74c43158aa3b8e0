package server

import (
	"context"
	"io"
	"strings"
	"testing"
)

// Bad build-service flags stop the server before it listens, with a
// message naming the flag.
func TestServiceFlagsRefused(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--git-allow", ""}, "git-allow"},
		{[]string{"--git-allow", "example.com/repo"}, "git-allow"},
		{[]string{"--git-allow", "user@example.com"}, "git-allow"},
		{[]string{"--git-allow", "[a-"}, "git-allow"},
		{[]string{"--max-source", "0"}, "--max-source"},
		{[]string{"--max-source", "-1"}, "max-source"},
	} {
		args := append([]string{"--addr", "127.0.0.1:0", "--data", t.TempDir()}, c.args...)
		err := Run(context.Background(), args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: got %v, want one line naming %s", c.args, err, c.want)
		}
	}
}
