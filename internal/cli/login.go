package cli

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"
)

// ErrLogin is a kiln login that cannot store credentials as asked.
var ErrLogin = errors.New("login")

// maxPassword bounds what --password-stdin reads: a token, not a file.
const maxPassword = 64 << 10

// passwordWarning is what -p prints, as the docker CLI does (ko's login
// takes -p silently).
const passwordWarning = "kiln: WARNING! Using --password via the CLI is insecure. Use --password-stdin."

func newLoginCommand(inv Invocation) *cobra.Command {
	var l login
	cmd := &cobra.Command{
		Use:   "login REGISTRY -u USER --password-stdin",
		Short: "Store a registry's credentials in the docker config, as ko login does",
		Long: "Store a registry's credentials in the docker config ($DOCKER_CONFIG/config.json, else ~/.docker/config.json), " +
			"as ko login does: in the credential helper the config names for that registry, else in the file. " +
			"kiln build, resolve and the other commands read them from there.",
		Example: "  printf %s \"$TOKEN\" | kiln login reg.example.com -u ci --password-stdin",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l.registry = args[0]
			l.passwordSet = cmd.Flags().Changed("password")
			return l.run(inv)
		},
	}
	cmd.Flags().StringVarP(&l.user, "username", "u", "", "user name")
	cmd.Flags().StringVarP(&l.password, "password", "p", "", "password (insecure: visible to other processes; use --password-stdin)")
	cmd.Flags().BoolVar(&l.stdin, "password-stdin", false, "read the password from stdin")
	return cmd
}

type login struct {
	registry, user, password string
	passwordSet, stdin       bool
}

func (l login) run(inv Invocation) error {
	reg, err := name.NewRegistry(l.registry, name.StrictValidation)
	if err != nil || strings.ContainsAny(l.registry, "/@") {
		return fmt.Errorf("%w: %q is not a registry: give its host[:port], without a scheme or a path", ErrLogin, l.registry)
	}
	switch {
	case l.passwordSet && l.stdin:
		return fmt.Errorf("%w: --password and --password-stdin both given: use one", ErrLogin)
	case l.stdin:
		if inv.Stdin == nil {
			return fmt.Errorf("%w: --password-stdin but no stdin", ErrLogin)
		}
		data, err := io.ReadAll(io.LimitReader(inv.Stdin, maxPassword+1))
		if err != nil {
			return fmt.Errorf("%w: reading the password from stdin: %v", ErrLogin, err)
		}
		if len(data) > maxPassword {
			return fmt.Errorf("%w: the password on stdin is over %d KiB: pipe the password alone", ErrLogin, maxPassword>>10)
		}
		l.password = strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
	}
	if l.user == "" {
		return fmt.Errorf("%w: no user name: give -u USER", ErrLogin)
	}
	if l.password == "" {
		return fmt.Errorf("%w: no password for %s: pipe it to --password-stdin", ErrLogin, l.user)
	}
	if l.passwordSet {
		fmt.Fprintln(inv.Stderr, passwordWarning)
	}
	dir := dockerConfigDir(inv)
	if dir == "" {
		return fmt.Errorf("%w: neither DOCKER_CONFIG nor HOME is set: set DOCKER_CONFIG to the docker config's directory", ErrLogin)
	}
	cf, err := config.Load(dir)
	if err != nil {
		// Saving now would drop what the file holds.
		return fmt.Errorf("%w: %v: fix or move it, then log in again", ErrLogin, err)
	}
	server := reg.Name()
	store := cf.GetCredentialsStore(server)
	if server == name.DefaultRegistry {
		server = authn.DefaultAuthKey // the key the docker CLI uses for its default registry
	}
	if err := store.Store(types.AuthConfig{ServerAddress: server, Username: l.user, Password: l.password}); err != nil {
		return fmt.Errorf("%w: storing the credentials for %s: %v", ErrLogin, server, err)
	}
	if err := cf.Save(); err != nil {
		return fmt.Errorf("%w: writing %s: %v", ErrLogin, cf.Filename, err)
	}
	fmt.Fprintf(inv.Stderr, "kiln: logged in to %s via %s\n", reg.Name(), cf.Filename)
	return nil
}

// dockerConfigDir is where the docker config lives: $DOCKER_CONFIG, else
// ~/.docker; "" when neither is known.
func dockerConfigDir(inv Invocation) string {
	if d := inv.getenv("DOCKER_CONFIG"); d != "" {
		return d
	}
	if h := inv.getenv("HOME"); h != "" {
		return filepath.Join(h, ".docker")
	}
	return ""
}
