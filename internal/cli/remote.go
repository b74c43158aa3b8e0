package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kilnbuild/kiln/internal/buildrecord"
	"github.com/kilnbuild/kiln/internal/client"
	"github.com/kilnbuild/kiln/internal/request"
)

// remoteFlags are kiln build's flags for the build service.
type remoteFlags struct {
	url   string
	token string
}

// localOnly are kiln build's flags that mean nothing to a build service:
// the service signs with its own key and publishes to its registry.
var localOnly = []string{"load", "store", "key"}

// remoteRequest is what kiln build --remote submits: the build fields and
// the repository to push to.
type remoteRequest struct {
	request.Build
	Output string `json:"output,omitempty"`
	// Source is empty: the archive sent with the request is the source.
	Source struct{} `json:"source"`
}

// runRemote builds pkgs on the build service at f.remote.url: it packs
// the module around the working directory, submits it, copies the log to
// stderr as it is written and prints what a local build prints. Ctrl-C
// cancels the remote build.
func runRemote(cmd *cobra.Command, inv Invocation, f *buildFlags, pkgs []string) error {
	for _, name := range localOnly {
		if cmd.Flags().Changed(name) {
			return fmt.Errorf("--%s does not go with --remote: the build service publishes to its registry and signs with its own key", name)
		}
	}
	if strings.Contains(f.output, ":") && !strings.Contains(f.output, "/") || strings.HasPrefix(f.output, "oci") || strings.HasPrefix(f.output, "docker-archive:") {
		return fmt.Errorf("--output %q does not go with --remote: give a registry repository, or none for the service's own registry", f.output)
	}
	root, err := client.ModuleRoot(inv.Dir)
	if err != nil {
		return err
	}
	req := remoteRequest{Output: f.output, Build: request.Build{
		Platforms: f.platforms, Base: f.base, Tags: f.tags,
		Bare: f.bare, BaseImportPaths: f.baseImportPaths, PreserveImportPaths: f.preserveImports,
		Compression: f.compression, CompressionLevel: f.compressionLevel,
		Sign: f.sign, SignatureFormat: f.sigFormat,
	}}
	if err := f.ko.apply(&req.Build); err != nil {
		return err
	}
	// The platforms a local build would take from the environment go with
	// the request: the service does not see this environment.
	cfg, err := loadConfig(inv)
	if err != nil {
		return err
	}
	if req.Platforms, err = koPlatforms(inv, req.Platforms, cfg); err != nil {
		return err
	}
	if cmd.Flags().Changed("jobs") {
		req.Jobs = f.jobs
	}
	if !cmd.Flags().Changed("signature-format") {
		req.SignatureFormat = ""
	}
	for _, p := range pkgs {
		if req.Packages, err = appendPackage(req.Packages, inv.Dir, root, p); err != nil {
			return err
		}
	}
	if err := req.Validate(); err != nil {
		return err
	}
	token := f.remote.token
	if token == "" {
		token = inv.getenv("KILN_TOKEN")
	}
	c := &client.Client{URL: f.remote.url, Token: token}
	ctx := cmd.Context()
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(client.Pack(root, pw)) }()
	b, err := c.Submit(ctx, req, pr)
	pr.Close()
	if err != nil {
		return err
	}
	fmt.Fprintf(inv.Stderr, "kiln: build %s queued on %s\n", b.ID, f.remote.url)
	final, err := c.Follow(ctx, b.ID, inv.Stderr)
	if ctx.Err() != nil {
		// Interrupted: the build must not go on without its caller.
		cancelCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if cerr := c.Cancel(cancelCtx, b.ID); cerr != nil {
			return fmt.Errorf("interrupted, and cancelling build %s failed: %w", b.ID, cerr)
		}
		return fmt.Errorf("interrupted: build %s cancelled", b.ID)
	}
	if err != nil {
		return err
	}
	if final.State != buildrecord.Succeeded {
		msg := string(final.State)
		if final.Error != nil {
			msg = final.Error.Message
		}
		return fmt.Errorf("build %s %s: %s", b.ID, final.State, msg)
	}
	if f.json {
		enc := json.NewEncoder(inv.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(final.Results)
	}
	for _, r := range final.Results {
		fmt.Fprintln(inv.Stdout, r.Ref)
	}
	return nil
}

// appendPackage adds p as the service sees it: a ./dir path relative to
// the module root, or an import path as it is.
func appendPackage(pkgs []string, dir, root, p string) ([]string, error) {
	if !strings.HasPrefix(p, ".") && !filepath.IsAbs(p) {
		return append(pkgs, p), nil
	}
	rel, err := filepath.Rel(root, filepath.Join(dir, p))
	if filepath.IsAbs(p) {
		rel, err = filepath.Rel(root, p)
	}
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return nil, fmt.Errorf("package %s is outside the module at %s: --remote sends that module alone", p, root)
	}
	suffix := ""
	if strings.HasSuffix(p, "/...") {
		suffix = "/..."
		rel = strings.TrimSuffix(filepath.ToSlash(rel), "/...")
	}
	return append(pkgs, "./"+strings.TrimPrefix(filepath.ToSlash(rel)+suffix, "./")), nil
}
