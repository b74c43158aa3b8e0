package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/renameio/v2"
	"github.com/spf13/cobra"

	"github.com/kilnbuild/kiln/internal/compare"
	"github.com/kilnbuild/kiln/internal/pipeline"
)

type compareFlags struct {
	format    string
	output    string
	maxSize   string
	maxGrowth string
	platform  string
	store     string

	maxRead, maxFile, maxTempDisk, maxJSON string
	maxEntries                             int64
}

func newCompareCommand(inv Invocation) *cobra.Command {
	f := &compareFlags{}
	cmd := &cobra.Command{
		Use:   "compare IMAGE...",
		Short: "Compare images' sizes, contents and attack surface against the first",
		Long: `Compare two or more images; the first is the baseline. Each IMAGE is a
registry reference, oci:DIR[:NAME], oci-archive:FILE[:NAME],
docker-archive:FILE[:REPO:TAG], or a kiln.local/… image in the local store.
For an index, the linux/amd64 image is read (else the host's), or --platform's.

For each image: compressed and uncompressed size, layers, files, the largest
files, and the attack surface: shells, package managers and their databases,
compilers, setuid/setgid files, world-writable directories, the user it runs
as, entrypoint, env, and its packages (from an attached SPDX SBOM: an
attestation, whose signature is not checked here, else the unsigned
sha256-<hex>.sbom kiln build attaches; without one, from the dpkg/apk
databases and the Go build info of its executables), with changes against
the baseline in %.

--max-size and --max-growth make a CI size budget: the report is written, then
kiln exits 1 when an image other than the baseline exceeds one.

Every image is read within reading budgets (--max-read, --max-entries,
--max-temp-disk, --max-json): one that exceeds a budget stops compare with an
error naming it. A file larger than --max-file is not analysed and the report
notes it. Everything read is checked against the digest that names it.`,
		Example: `  kiln compare docker-archive:naive.tar oci-archive:multistage.tar kiln.local/server:latest
  kiln compare --format markdown --max-growth 5 registry.example.com/app:main kiln.local/app:dev >> "$GITHUB_STEP_SUMMARY"`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCompare(cmd, inv, f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.format, "format", string(compare.FormatTable), "output format: table, json, markdown or html")
	fl.StringVarP(&f.output, "output", "o", "", "write the report to this file instead of stdout")
	fl.StringVar(&f.maxSize, "max-size", "", "fail when an image other than the baseline is larger than this, compressed (e.g. 10MB, 512KiB)")
	fl.StringVar(&f.maxGrowth, "max-growth", "", "fail when an image's compressed size exceeds the baseline's by more than this percentage (e.g. 5)")
	fl.StringVar(&f.platform, "platform", "", "the image to read from an index, as os/arch[/variant] (default linux/amd64, else the host's)")
	fl.StringVar(&f.store, "store", "", "local store directory (default as for kiln build)")
	fl.StringVar(&f.maxRead, "max-read", "16GiB", "the most bytes read from each image's layers and archive (sparse files count at their declared size)")
	fl.StringVar(&f.maxFile, "max-file", "256MiB", "the largest file analysed (package databases, Go executables); larger ones get a note")
	fl.Int64Var(&f.maxEntries, "max-entries", compare.DefaultMaxEntries, "the most tar entries and packages in each image")
	fl.StringVar(&f.maxTempDisk, "max-temp-disk", "2GiB", "the most temporary disk in use for each image (a gzipped archive, Go executables)")
	fl.StringVar(&f.maxJSON, "max-json", "4MiB", "the largest JSON document read (index.json, manifest.json, manifests, configs); at most 4MiB")
	return cmd
}

func runCompare(cmd *cobra.Command, inv Invocation, f *compareFlags, refs []string) error {
	format, err := compare.ParseFormat(f.format)
	if err != nil {
		return fmt.Errorf("--format: %w", err)
	}
	var budget compare.Budget
	if f.maxSize != "" {
		if budget.MaxSize, err = compare.ParseSize(f.maxSize); err != nil {
			return fmt.Errorf("--max-size: %w", err)
		}
		if budget.MaxSize == 0 {
			return errors.New("--max-size: the budget must be more than 0 bytes")
		}
	}
	if f.maxGrowth != "" {
		g, err := compare.ParsePercent(f.maxGrowth)
		if err != nil {
			return fmt.Errorf("--max-growth: %w", err)
		}
		budget.MaxGrowth = &g
	}
	limits, err := compareLimits(f)
	if err != nil {
		return err
	}
	opt := compare.Options{Dir: inv.Dir, TempDir: inv.getenv("TMPDIR"), Limits: limits}
	if f.platform != "" {
		if opt.Platform, err = v1.ParsePlatform(f.platform); err != nil || opt.Platform.OS == "" || opt.Platform.Architecture == "" {
			return fmt.Errorf("--platform %q: want os/arch[/variant], e.g. linux/arm64", f.platform)
		}
	}
	for _, r := range refs {
		if !strings.HasPrefix(r, pipeline.LocalRepo+"/") {
			continue
		}
		if f.store != "" {
			opt.StoreDir = abs(inv.Dir, f.store)
		} else if opt.StoreDir, err = StoreDir(inv.getenv); err != nil {
			return err
		}
		break
	}
	if f.output != "" {
		// Fail before reading any image when the report cannot be written.
		if st, err := os.Stat(filepath.Dir(abs(inv.Dir, f.output))); err != nil || !st.IsDir() {
			return fmt.Errorf("--output %s: no such directory", f.output)
		}
	}

	report, err := compare.Compare(cmd.Context(), refs, opt)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := compare.Render(&buf, report, format); err != nil {
		return err
	}
	if f.output == "" {
		if _, err := inv.Stdout.Write(buf.Bytes()); err != nil {
			return err
		}
	} else if err := renameio.WriteFile(abs(inv.Dir, f.output), buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("--output %s: %w", f.output, err)
	}
	return report.CheckBudget(budget)
}

// compareLimits reads the reading-budget flags.
func compareLimits(f *compareFlags) (compare.Limits, error) {
	l := compare.Limits{Entries: f.maxEntries}
	for _, s := range []struct {
		flag, val string
		dst       *int64
	}{
		{"--max-read", f.maxRead, &l.Bytes},
		{"--max-file", f.maxFile, &l.File},
		{"--max-temp-disk", f.maxTempDisk, &l.TempDisk},
		{"--max-json", f.maxJSON, &l.JSON},
	} {
		n, err := compare.ParseSize(s.val)
		if err != nil {
			return l, fmt.Errorf("%s: %w", s.flag, err)
		}
		if n <= 0 {
			return l, fmt.Errorf("%s: the budget must be more than 0 bytes", s.flag)
		}
		*s.dst = n
	}
	if l.Entries <= 0 {
		return l, errors.New("--max-entries: the budget must be more than 0")
	}
	if l.JSON > compare.DefaultMaxJSON {
		return l, fmt.Errorf("--max-json: at most 4MiB, the most any manifest or config is read (got %s)", f.maxJSON)
	}
	return l, nil
}
