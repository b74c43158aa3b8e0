package gobuild

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/kilnbuild/kiln/internal/oneline"
)

// GoEnv is what {{.GoEnv}} starts from: `go env` in dir with the caller's
// environment as it is (b.Env, not the one kiln's builds get), as ko runs
// it. It reads `go env -json`, which gives each value exactly.
func (b *Builder) GoEnv(ctx context.Context, dir string) (map[string]string, error) {
	out, err := b.run(ctx, dir, b.Env, "env", "-json")
	if err != nil {
		return nil, fmt.Errorf("running go env for {{.GoEnv}}: %s", oneline.First(err.Error()))
	}
	var env map[string]string
	if err := json.Unmarshal(out, &env); err != nil {
		return nil, fmt.Errorf("reading go env -json for {{.GoEnv}}: %w", err)
	}
	return env, nil
}
