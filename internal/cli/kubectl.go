package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// ErrNoKubectl is returned by apply, create, delete and run when kubectl is
// not on PATH.
var ErrNoKubectl = errors.New("kubectl not found on PATH: install kubectl to use this command")

// newApplyCommand is kiln apply or kiln create (verb): resolve, then pipe
// the result to kubectl VERB -f -.
func newApplyCommand(inv Invocation, verb string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   verb + " -f FILE|DIR|- | -k DIR [flags] [-- KUBECTL FLAGS]",
		Short: "Resolve like kiln resolve, then pipe the result to kubectl " + verb,
		Long: `Resolve the inputs as kiln resolve does, then run kubectl ` + verb + ` -f - with
the result on its standard input. kubectl runs only when every image is
built. kubectl's connection flags (--context, -n, --kubeconfig, ...) and
anything after -- are passed to kubectl.`,
	}
	r := addResolveFlags(inv, cmd)
	kf := addKubectlFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		kubectl, err := findKubectl(inv)
		if err != nil {
			return err
		}
		res, err := r.resolve(cmd.Context())
		if err != nil {
			return err
		}
		argv := append(append([]string{verb, "-f", "-"}, kubectlArgs(kf)...), args...)
		return runKubectl(cmd.Context(), inv, kubectl, bytes.NewReader(res.Output), argv)
	}
	return cmd
}

// newDeleteCommand passes its arguments to kubectl delete unchanged, as ko
// does.
func newDeleteCommand(inv Invocation) *cobra.Command {
	return &cobra.Command{
		Use:                "delete [KUBECTL DELETE ARGS]",
		Short:              "Run kubectl delete with these arguments (see kubectl help delete)",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			kubectl, err := findKubectl(inv)
			if err != nil {
				return err
			}
			return runKubectl(cmd.Context(), inv, kubectl, inv.Stdin, append([]string{"delete"}, args...))
		},
	}
}

// newRunCommand builds packages and runs each once with kubectl run, as ko
// run does: kubectl run NAME --image REF --attach --rm --restart=Never
// --log-flush-frequency=1s [ARGS after --].
func newRunCommand(inv Invocation) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run IMPORTPATH... [flags] [-- KUBECTL RUN ARGS]",
		Short: "Build a Go main package and run it once on Kubernetes with kubectl run",
	}
	b := addBuildFlags(inv, cmd)
	kf := addKubectlFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		pkgs, extra := args, []string(nil)
		if dash := cmd.ArgsLenAtDash(); dash >= 0 {
			pkgs, extra = args[:dash], args[dash:]
		}
		if len(pkgs) == 0 {
			return errors.New("no package given: name a main package, e.g. kiln run ./cmd/server")
		}
		kubectl, err := findKubectl(inv)
		if err != nil {
			return err
		}
		refs, err := b.run(cmd.Context(), pkgs)
		if err != nil {
			return err
		}
		for _, p := range pkgs {
			ref := refs[p]
			argv := []string{"run", podName(ref), "--image", ref, "--attach", "--rm", "--restart=Never", "--log-flush-frequency=1s"}
			argv = append(append(argv, kubectlArgs(kf)...), extra...)
			fmt.Fprintf(inv.Stderr, "$ kubectl %s\n", strings.Join(argv, " "))
			if err := runKubectl(cmd.Context(), inv, kubectl, inv.Stdin, argv); err != nil {
				return err
			}
		}
		return nil
	}
	return cmd
}

// podName is the last element of ref's repository, as ko names the pod.
func podName(ref string) string {
	repo, _, _ := strings.Cut(ref, "@")
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	return path.Base(repo)
}

// kubectlFlag is a kubectl connection flag kiln accepts and passes on.
type kubectlFlag struct {
	name, short, usage string
	kind               string // "string", "bool" or "strings" (repeatable)
}

// The flags of kubectl's generic client options, which ko accepted too.
var kubectlFlags = []kubectlFlag{
	{"kubeconfig", "", "path to the kubeconfig file", "string"},
	{"context", "", "the kubeconfig context to use", "string"},
	{"cluster", "", "the kubeconfig cluster to use", "string"},
	{"user", "", "the kubeconfig user to use", "string"},
	{"namespace", "n", "the namespace for this request", "string"},
	{"server", "s", "the address and port of the Kubernetes API server", "string"},
	{"tls-server-name", "", "server name for the server certificate check", "string"},
	{"insecure-skip-tls-verify", "", "do not check the server's certificate", "bool"},
	{"certificate-authority", "", "path to a CA certificate file", "string"},
	{"client-certificate", "", "path to a client certificate file", "string"},
	{"client-key", "", "path to a client key file", "string"},
	{"token", "", "bearer token for the API server", "string"},
	{"username", "", "username for basic authentication", "string"},
	{"password", "", "password for basic authentication", "string"},
	{"as", "", "user to impersonate", "string"},
	{"as-group", "", "group to impersonate; repeatable", "strings"},
	{"as-uid", "", "UID to impersonate", "string"},
	{"cache-dir", "", "kubectl's cache directory", "string"},
	{"request-timeout", "", "how long to wait for one request", "string"},
	{"disable-compression", "", "do not compress responses from the server", "bool"},
}

func addKubectlFlags(cmd *cobra.Command) *pflag.FlagSet {
	fs := pflag.NewFlagSet("kubectl", pflag.ContinueOnError)
	for _, f := range kubectlFlags {
		usage := "kubectl: " + f.usage
		switch f.kind {
		case "bool":
			fs.BoolP(f.name, f.short, false, usage)
		case "strings":
			fs.StringArrayP(f.name, f.short, nil, usage)
		default:
			fs.StringP(f.name, f.short, "", usage)
		}
	}
	cmd.Flags().AddFlagSet(fs)
	return fs
}

// kubectlArgs are the kubectl flags given, as --name=value, in kubectlFlags' order.
func kubectlArgs(fs *pflag.FlagSet) []string {
	var args []string
	for _, kf := range kubectlFlags {
		f := fs.Lookup(kf.name)
		if f == nil || !f.Changed {
			continue
		}
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			for _, v := range sv.GetSlice() {
				args = append(args, "--"+f.Name+"="+v)
			}
			continue
		}
		args = append(args, "--"+f.Name+"="+f.Value.String())
	}
	return args
}

// findKubectl looks kubectl up on the invocation's PATH (not the process's:
// tests put a stand-in there).
func findKubectl(inv Invocation) (string, error) {
	for _, dir := range filepath.SplitList(inv.getenv("PATH")) {
		if !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, "kubectl")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", ErrNoKubectl
}

// runKubectl runs kubectl with argv, stdin, the invocation's environment
// and its output streams.
func runKubectl(ctx context.Context, inv Invocation, kubectl string, stdin io.Reader, argv []string) error {
	c := exec.CommandContext(ctx, kubectl, argv...)
	c.Env, c.Dir = inv.Env, inv.Dir
	c.Stdin, c.Stdout, c.Stderr = stdin, inv.Stdout, inv.Stderr
	if err := c.Run(); err != nil {
		return fmt.Errorf("kubectl %s failed: %w", argv[0], err)
	}
	return nil
}
