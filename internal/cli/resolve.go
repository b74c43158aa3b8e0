package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/spf13/cobra"

	"github.com/kilnbuild/kiln/internal/gobuild"
	"github.com/kilnbuild/kiln/internal/resolve"
)

func newResolveCommand(inv Invocation) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "resolve -f FILE|DIR|- | -k DIR [flags]",
		Short: "Build the ko:// images that Kubernetes YAML or JSON names and print it with their digests",
		Long: `Read YAML and JSON (-f: files, directories' .yaml, .yml and .json files,
- for stdin; -R recurses) or the output of kustomize run in-process on a
kustomization directory (-k), build every Go main package written as
ko://IMPORTPATH once, and print the documents with each such string replaced
by REPO/NAME@sha256:... . Everything else is printed byte for byte as read:
comments, key order, anchors, quoting and line endings (kustomize's output
has no comments to keep: kustomize drops them). Nothing is printed unless
every package builds. The build flags are kiln build's.`,
		Args: cobra.NoArgs,
	}
	r := addResolveFlags(inv, cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		res, err := r.resolve(cmd.Context())
		if err != nil {
			return err
		}
		_, err = inv.Stdout.Write(res.Output)
		return err
	}
	return cmd
}

// resolveFlags are the flags of resolve, apply and create besides kiln
// build's.
type resolveFlags struct {
	files     []string
	kustomize string
	recursive bool
	selector  string
	strict    bool
	imageRefs string
}

// resolver reads, builds and resolves for resolve, apply and create.
type resolver struct {
	inv   Invocation
	f     resolveFlags
	build *builder
}

func addResolveFlags(inv Invocation, cmd *cobra.Command) *resolver {
	r := &resolver{inv: inv}
	fl := cmd.Flags()
	fl.StringSliceVarP(&r.f.files, "filename", "f", nil, "file, directory or - (stdin) to resolve; repeatable")
	fl.StringVarP(&r.f.kustomize, "kustomize", "k", "", "kustomization directory: run kustomize on it in-process and resolve its output (not with -f)")
	fl.BoolVarP(&r.f.recursive, "recursive", "R", false, "read the directories given to -f recursively")
	fl.StringVarP(&r.f.selector, "selector", "l", "", "keep only objects whose labels match: a=b, a!=b, a in (x,y), a notin (x,y), a, !a (comma means and)")
	fl.BoolVar(&r.f.strict, "strict", true, "only ko:// strings are images: always on, as in ko v0.19; accepted for older scripts")
	fl.StringVar(&r.f.imageRefs, "image-refs", "", "also write the image references, one per line, to this file")
	r.build = addBuildFlags(inv, cmd)
	return r
}

// resolve reads the inputs, checks that every ko:// reference names a main
// package (so that an error can name its line), builds the distinct
// packages in one run of the pipeline, and replaces the references.
func (r *resolver) resolve(ctx context.Context) (resolve.Result, error) {
	if !r.f.strict {
		return resolve.Result{}, errors.New("--strict=false: kiln, like ko v0.19, replaces only ko:// strings: write the images as ko://IMPORTPATH")
	}
	sel, err := resolve.ParseSelector(r.f.selector)
	if err != nil {
		return resolve.Result{}, err
	}
	inputs, err := r.inputs()
	if err != nil {
		return resolve.Result{}, err
	}
	plan, err := resolve.Scan(inputs, sel)
	if err != nil {
		return resolve.Result{}, err
	}
	jobs := r.build.jobs()
	// go list names each package: ko://./cmd/app and its full import path
	// are one package, built once.
	var mu sync.Mutex
	canonical := map[string]string{}
	gb := &gobuild.Builder{Env: r.inv.Env}
	err = plan.Each(ctx, jobs, func(ctx context.Context, ip string) error {
		pkg, err := gb.Resolve(ctx, r.inv.Dir, ip)
		if err != nil {
			return err
		}
		mu.Lock()
		canonical[ip] = pkg.ImportPath
		mu.Unlock()
		return nil
	})
	if err != nil {
		return resolve.Result{}, err
	}
	var pkgs []string
	seen := map[string]bool{}
	for _, ip := range plan.ImportPaths() {
		if c := canonical[ip]; !seen[c] {
			seen[c] = true
			pkgs = append(pkgs, c)
		}
	}
	refs, err := r.build.run(ctx, pkgs)
	if err != nil {
		return resolve.Result{}, err
	}
	res, err := plan.Resolve(ctx, jobs, func(_ context.Context, ip string) (string, error) {
		return refs[canonical[ip]], nil
	})
	if err != nil {
		return resolve.Result{}, err
	}
	if r.f.imageRefs != "" {
		var b bytes.Buffer
		for _, ref := range res.Refs {
			fmt.Fprintln(&b, ref)
		}
		if err := os.WriteFile(abs(r.inv.Dir, r.f.imageRefs), b.Bytes(), 0o644); err != nil {
			return resolve.Result{}, fmt.Errorf("--image-refs: %w", err)
		}
	}
	return res, nil
}

// inputs are what -f names, or kustomize's output for -k: one or the
// other, as kubectl takes them.
func (r *resolver) inputs() ([]resolve.Input, error) {
	if r.f.kustomize == "" {
		return resolve.ReadInputs(r.f.files, r.f.recursive, r.inv.Dir, r.inv.Stdin)
	}
	if len(r.f.files) > 0 {
		return nil, errors.New("-k and -f together: give one of them (-k DIR runs kustomize on DIR; -f reads plain YAML)")
	}
	in, err := resolve.Kustomize(r.f.kustomize, r.inv.Dir)
	if err != nil {
		return nil, err
	}
	return []resolve.Input{in}, nil
}

// builder builds packages for another command (resolve, apply, run) with
// kiln build's flags, which it adds to that command.
type builder struct {
	inv Invocation
	f   buildFlags
}

func addBuildFlags(inv Invocation, cmd *cobra.Command) *builder {
	b := &builder{inv: inv}
	b.f.register(cmd.Flags())
	return b
}

func (b *builder) jobs() int { return b.f.jobs }

// run builds and publishes pkgs as kiln build does, returning each
// package's reference by the name it was given.
func (b *builder) run(ctx context.Context, pkgs []string) (map[string]string, error) {
	refs := map[string]string{}
	if len(pkgs) == 0 {
		return refs, nil
	}
	outcomes, err := buildPackages(ctx, b.inv, &b.f, pkgs)
	if err != nil {
		return nil, err
	}
	if len(outcomes) != len(pkgs) {
		return nil, fmt.Errorf("internal error: the build gave %d results for %d packages", len(outcomes), len(pkgs))
	}
	for i, p := range pkgs {
		refs[p] = outcomes[i].Ref
	}
	return refs, nil
}
