package compare

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
)

// Format is an output format of a report.
type Format string

// The formats Render writes.
const (
	FormatTable    Format = "table"    // aligned columns for a terminal
	FormatJSON     Format = "json"     // the Report, indented
	FormatMarkdown Format = "markdown" // GitHub-flavoured, for a CI job summary
	FormatHTML     Format = "html"     // a self-contained page with an SVG chart, no JavaScript
)

// Formats lists the formats, the default first.
var Formats = []Format{FormatTable, FormatJSON, FormatMarkdown, FormatHTML}

// ParseFormat checks a format name; "md" is markdown.
func ParseFormat(s string) (Format, error) {
	if s == "md" {
		return FormatMarkdown, nil
	}
	for _, f := range Formats {
		if string(f) == s {
			return f, nil
		}
	}
	return "", fmt.Errorf("unknown format %q: want table, json, markdown or html", s)
}

// Render writes r to w in format f.
func Render(w io.Writer, r *Report, f Format) error {
	switch f {
	case FormatTable, "":
		return renderTable(w, r)
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(r)
	case FormatMarkdown:
		return renderMarkdown(w, r)
	case FormatHTML:
		return renderHTML(w, r)
	}
	return fmt.Errorf("unknown format %q", f)
}

// FormatSize writes bytes with a decimal unit and three significant
// digits: 512 B, 1.21 MB, 149 MB.
func FormatSize(n int64) string {
	if n > -1000 && n < 1000 {
		return fmt.Sprintf("%d B", n)
	}
	units := []string{"kB", "MB", "GB", "TB", "PB", "EB"}
	f, i := float64(n)/1000, 0
	for math.Abs(f) >= 999.5 && i < len(units)-1 {
		f /= 1000
		i++
	}
	switch a := math.Abs(f); {
	case a >= 99.95:
		return fmt.Sprintf("%.0f %s", f, units[i])
	case a >= 9.995:
		return fmt.Sprintf("%.1f %s", f, units[i])
	}
	return fmt.Sprintf("%.2f %s", f, units[i])
}

// formatPercent writes a change as "-98.3%" or "+4.0%", "new" when the
// baseline had none.
func formatPercent(c Change) string {
	if c.Percent == nil {
		if c.Diff == 0 {
			return "+0.0%"
		}
		return "new"
	}
	p := *c.Percent
	if p == 0 {
		p = 0
	}
	return fmt.Sprintf("%+.1f%%", p)
}

func formatCount(c Change) string {
	return fmt.Sprintf("%+d", c.Diff)
}

const tablePackages = 50 // packages listed per image in the table format

func renderTable(w io.Writer, r *Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "kiln compare: %d images, baseline %s\n\n", len(r.Images), r.Baseline)
	for _, rw := range rows(r) {
		fmt.Fprintf(tw, "%s\t%s\t\n", rw.Label, strings.Join(rw.Cells, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for i := range r.Images {
		im := &r.Images[i]
		fmt.Fprintf(w, "\n%s\n", imageTitle(i, im))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "  layer\tcompressed\tuncompressed\tentries\tdigest\tcreated by\n")
		for j, l := range im.Layers {
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%d\t%s\t%s\n", j+1, FormatSize(l.CompressedSize), FormatSize(l.UncompressedSize), l.Entries, shortDigest(l.Digest), truncate(l.CreatedBy, 60))
		}
		tw.Flush()
		if len(im.LargestFiles) > 0 {
			fmt.Fprintf(w, "  largest files:\n")
			tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
			for _, f := range im.LargestFiles {
				fmt.Fprintf(tw, "    %s\t %s\t %d:%d\t %s\n", FormatSize(f.Size), f.Mode, f.UID, f.GID, f.Path)
			}
			tw.Flush()
		}
		list := func(title string, xs []string) {
			if len(xs) > 0 {
				fmt.Fprintf(w, "  %s:\n", title)
				for _, x := range xs {
					fmt.Fprintf(w, "    %s\n", x)
				}
			}
		}
		s := im.Surface
		list("shells", s.Shells)
		list("package managers", s.PackageManagers)
		list("compilers", s.Compilers)
		list("setuid files", s.Setuid)
		list("setgid files", s.Setgid)
		list("world-writable dirs without the sticky bit", s.WorldWritableDirs)
		list("world-writable dirs with the sticky bit", s.WorldWritableSticky)
		list("env", im.Config.Env)
		var gos []string
		for _, g := range im.GoBinaries {
			gos = append(gos, goBinaryText(g))
		}
		list("go binaries", gos)
		fmt.Fprintf(w, "  packages: %d, %s\n", len(im.Packages), packageSourceText(im))
		if im.SBOM != nil {
			fmt.Fprintf(w, "    (%s: %s)\n", im.SBOM.Tag, im.SBOM.Note)
		}
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for j, p := range im.Packages {
			if j == tablePackages {
				fmt.Fprintf(tw, "    … and %d more (--format json lists them all)\n", len(im.Packages)-tablePackages)
				break
			}
			fmt.Fprintf(tw, "    %s\t%s\t%s\n", p.Name, p.Version, p.Type)
		}
		tw.Flush()
		list("notes", im.Notes)
		if d := im.Delta; d != nil {
			list(fmt.Sprintf("packages not in the baseline (%d)", len(d.PackagesAdded)), firstN(d.PackagesAdded, tablePackages))
			list(fmt.Sprintf("baseline packages not in this image (%d)", len(d.PackagesRemoved)), firstN(d.PackagesRemoved, tablePackages))
			list(fmt.Sprintf("packages with other versions (%d)", len(d.PackagesChanged)), firstN(d.PackagesChanged, tablePackages))
		}
	}
	return nil
}

func goBinaryText(g GoBinary) string {
	s := fmt.Sprintf("%s: %s, %s", g.Path, g.GoVersion, g.Package)
	if g.Module != "" && g.Module != g.Package {
		s += ", module " + g.Module
	}
	if g.Version != "" {
		s += " " + g.Version
	}
	return s
}

func firstN(xs []string, n int) []string {
	if len(xs) <= n {
		return xs
	}
	return append(xs[:n:n], fmt.Sprintf("… and %d more", len(xs)-n))
}

func truncate(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// md escapes text for a markdown table cell.
func md(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "<", "&lt;", ">", "&gt;", "&", "&amp;", "`", "'").Replace(s)
}

func renderMarkdown(w io.Writer, r *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "## kiln compare\n\nBaseline: %s. Sizes are decimal (1 MB = 1,000,000 bytes); percentages are against the baseline.\n\n", md(r.Baseline))
	rs := rows(r)
	b.WriteString("| |")
	for _, c := range rs[0].Cells {
		b.WriteString(" " + md(c) + " |")
	}
	b.WriteString("\n|---|")
	for range rs[0].Cells {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, rw := range rs[1:] {
		b.WriteString("| " + md(rw.Label) + " |")
		for _, c := range rw.Cells {
			b.WriteString(" " + md(c) + " |")
		}
		b.WriteString("\n")
	}
	for i := range r.Images {
		im := &r.Images[i]
		fmt.Fprintf(&b, "\n<details><summary>%s: layers, largest files, packages</summary>\n\n", md(imageTitle(i, im)))
		b.WriteString("| layer | compressed | uncompressed | entries | digest | created by |\n|---|---|---|---|---|---|\n")
		for j, l := range im.Layers {
			fmt.Fprintf(&b, "| %d | %s | %s | %d | %s | %s |\n", j+1, FormatSize(l.CompressedSize), FormatSize(l.UncompressedSize), l.Entries, md(shortDigest(l.Digest)), md(truncate(l.CreatedBy, 80)))
		}
		if len(im.LargestFiles) > 0 {
			b.WriteString("\n| size | mode | owner | largest files |\n|---|---|---|---|\n")
			for _, f := range im.LargestFiles {
				fmt.Fprintf(&b, "| %s | %s | %d:%d | %s |\n", FormatSize(f.Size), f.Mode, f.UID, f.GID, md(f.Path))
			}
		}
		s := im.Surface
		for _, l := range []struct {
			title string
			xs    []string
		}{{"setuid files", s.Setuid}, {"setgid files", s.Setgid}, {"world-writable dirs without the sticky bit", s.WorldWritableDirs}, {"env", im.Config.Env}, {"notes", im.Notes}} {
			if len(l.xs) > 0 {
				fmt.Fprintf(&b, "\n%s:\n", l.title)
				for _, x := range l.xs {
					fmt.Fprintf(&b, "- %s\n", md(x))
				}
			}
		}
		fmt.Fprintf(&b, "\n%d packages, %s", len(im.Packages), packageSourceText(im))
		if im.SBOM != nil {
			fmt.Fprintf(&b, " (%s)", md(im.SBOM.Tag))
		}
		b.WriteString(".\n")
		if len(im.Packages) > 0 {
			b.WriteString("\n| package | version | type |\n|---|---|---|\n")
			for _, p := range im.Packages {
				fmt.Fprintf(&b, "| %s | %s | %s |\n", md(p.Name), md(p.Version), p.Type)
			}
		}
		if d := im.Delta; d != nil {
			fmt.Fprintf(&b, "\nAgainst the baseline: %d packages added, %d removed, %d with other versions.\n", len(d.PackagesAdded), len(d.PackagesRemoved), len(d.PackagesChanged))
			for _, x := range d.PackagesAdded {
				fmt.Fprintf(&b, "- added %s\n", md(x))
			}
			for _, x := range d.PackagesRemoved {
				fmt.Fprintf(&b, "- removed %s\n", md(x))
			}
			for _, x := range d.PackagesChanged {
				fmt.Fprintf(&b, "- changed %s\n", md(x))
			}
		}
		b.WriteString("\n</details>\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
