package compare

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"strconv"
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

// row is one line of the side-by-side comparison every format shows.
type row struct {
	Label   string
	Cells   []string
	Surface bool // part of the attack surface
}

func shortDigest(d string) string {
	if alg, hex, ok := strings.Cut(d, ":"); ok && len(hex) > 12 {
		return alg + ":" + hex[:12]
	}
	return d
}

func listCell(xs []string, max int) string {
	switch {
	case len(xs) == 0:
		return "none"
	case len(xs) <= max:
		return strings.Join(xs, ", ")
	}
	return strings.Join(xs[:max], ", ") + fmt.Sprintf(" +%d more", len(xs)-max)
}

func countCell(xs []string) string {
	if len(xs) == 0 {
		return "0"
	}
	return strconv.Itoa(len(xs)) + ": " + listCell(xs, 2)
}

func argvCell(xs []string) string {
	if len(xs) == 0 {
		return "-"
	}
	b, _ := json.Marshal(xs)
	return string(b)
}

func packageSourceText(im *Image) string {
	if im.PackageSource == PackagesFromSBOM {
		return "from the SBOM attestation, signature not checked"
	}
	return "from the image's package databases and Go build info"
}

// rows builds the side-by-side comparison.
func rows(r *Report) []row {
	var out []row
	add := func(label string, surface bool, cell func(i int, im *Image) string) {
		rw := row{Label: label, Surface: surface}
		for i := range r.Images {
			rw.Cells = append(rw.Cells, cell(i, &r.Images[i]))
		}
		out = append(out, rw)
	}
	withDelta := func(v string, im *Image, c func(*Delta) Change, f func(Change) string) string {
		if im.Delta == nil {
			return v
		}
		return v + " (" + f(c(im.Delta)) + ")"
	}
	add("image", false, func(i int, im *Image) string {
		if i == 0 {
			return im.Ref + " (baseline)"
		}
		return im.Ref
	})
	add("kind", false, func(_ int, im *Image) string { return im.Kind })
	add("platform", false, func(_ int, im *Image) string {
		if im.Platform == "" {
			return "-"
		}
		return im.Platform
	})
	add("digest", false, func(_ int, im *Image) string { return shortDigest(im.Digest) })
	add("compressed", false, func(_ int, im *Image) string {
		return withDelta(FormatSize(im.CompressedSize), im, func(d *Delta) Change { return d.CompressedSize }, formatPercent)
	})
	add("uncompressed", false, func(_ int, im *Image) string {
		return withDelta(FormatSize(im.UncompressedSize), im, func(d *Delta) Change { return d.UncompressedSize }, formatPercent)
	})
	add("layers", false, func(_ int, im *Image) string {
		return withDelta(strconv.Itoa(len(im.Layers)), im, func(d *Delta) Change { return d.Layers }, formatCount)
	})
	add("files", false, func(_ int, im *Image) string {
		return withDelta(strconv.Itoa(im.Files), im, func(d *Delta) Change { return d.Files }, formatCount)
	})
	add("largest file", false, func(_ int, im *Image) string {
		if len(im.LargestFiles) == 0 {
			return "-"
		}
		f := im.LargestFiles[0]
		return f.Path + " (" + FormatSize(f.Size) + ")"
	})
	add("shells", true, func(_ int, im *Image) string { return listCell(im.Surface.Shells, 3) })
	add("package managers", true, func(_ int, im *Image) string { return listCell(im.Surface.PackageManagers, 3) })
	add("package databases", true, func(_ int, im *Image) string { return listCell(im.Surface.PackageDatabases, 2) })
	add("compilers", true, func(_ int, im *Image) string { return listCell(im.Surface.Compilers, 3) })
	add("setuid files", true, func(_ int, im *Image) string { return countCell(im.Surface.Setuid) })
	add("setgid files", true, func(_ int, im *Image) string { return countCell(im.Surface.Setgid) })
	add("world-writable dirs", true, func(_ int, im *Image) string { return countCell(im.Surface.WorldWritableDirs) })
	add("world-writable dirs (sticky)", true, func(_ int, im *Image) string { return countCell(im.Surface.WorldWritableSticky) })
	add("user", true, func(_ int, im *Image) string {
		u := im.Config.User
		if u == "" {
			u = "(unset)"
		}
		if im.Surface.RunsAsRoot {
			return u + ", runs as root"
		}
		return u
	})
	add("entrypoint", true, func(_ int, im *Image) string { return argvCell(im.Config.Entrypoint) })
	add("cmd", true, func(_ int, im *Image) string { return argvCell(im.Config.Cmd) })
	add("env", true, func(_ int, im *Image) string {
		names := make([]string, len(im.Config.Env))
		for i, e := range im.Config.Env {
			names[i], _, _ = strings.Cut(e, "=")
		}
		return listCell(names, 3)
	})
	add("packages", true, func(_ int, im *Image) string {
		v := strconv.Itoa(len(im.Packages))
		if im.PackageSource == PackagesFromSBOM {
			v += " (SBOM)"
		}
		if d := im.Delta; d != nil {
			v += fmt.Sprintf(" (+%d -%d ~%d)", len(d.PackagesAdded), len(d.PackagesRemoved), len(d.PackagesChanged))
		}
		return v
	})
	add("go binaries", true, func(_ int, im *Image) string {
		var ps []string
		for _, g := range im.GoBinaries {
			ps = append(ps, g.Path)
		}
		return listCell(ps, 2)
	})
	add("sbom", false, func(_ int, im *Image) string {
		if im.SBOM == nil {
			return "none attached"
		}
		return im.SBOM.SPDXVersion + ", signature not checked"
	})
	return out
}

func imageTitle(i int, im *Image) string {
	if i == 0 {
		return fmt.Sprintf("%d. %s (baseline)", i+1, im.Ref)
	}
	return fmt.Sprintf("%d. %s", i+1, im.Ref)
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

// truncateLeft keeps the end of s, where references differ.
func truncateLeft(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return "…" + string(r[len(r)-n+1:])
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

// bar is one bar of the HTML chart.
type bar struct {
	Y, Width int
	Class    string
	Title    string
	Text     string
	TextX    int
}

// chartImage is one image's pair of bars.
type chartImage struct {
	Label  string
	LabelY int
	Bars   []bar
}

type htmlImage struct {
	Title string
	Image *Image
}

type htmlView struct {
	Report  *Report
	Rows    []row
	Chart   []chartImage
	Width   int
	Height  int
	Images  []htmlImage
	Summary []string
}

// The chart's geometry, in SVG user units.
const (
	chartLabel  = 240 // width of the label column
	chartBars   = 420 // longest bar
	chartWidth  = chartLabel + chartBars + 140
	chartBarH   = 16
	chartGroupH = 2*chartBarH + 18
	chartTop    = 30
)

func chart(r *Report) []chartImage {
	var max int64 = 1
	for _, im := range r.Images {
		max = int64(math.Max(float64(max), math.Max(float64(im.CompressedSize), float64(im.UncompressedSize))))
	}
	width := func(v int64) int {
		if v <= 0 {
			return 0
		}
		return int(math.Max(1, math.Round(float64(v)*chartBars/float64(max))))
	}
	var out []chartImage
	for i := range r.Images {
		im := &r.Images[i]
		y := chartTop + i*chartGroupH
		label := im.Ref
		if i == 0 {
			label += " (baseline)"
		}
		ci := chartImage{Label: truncateLeft(label, 36), LabelY: y + chartBarH + 4}
		for k, v := range []struct {
			class, what string
			size        int64
			c           func(*Delta) Change
		}{
			{"c", "compressed", im.CompressedSize, func(d *Delta) Change { return d.CompressedSize }},
			{"u", "uncompressed", im.UncompressedSize, func(d *Delta) Change { return d.UncompressedSize }},
		} {
			text := FormatSize(v.size)
			if im.Delta != nil {
				text += " (" + formatPercent(v.c(im.Delta)) + ")"
			}
			w := width(v.size)
			ci.Bars = append(ci.Bars, bar{
				Y: y + k*(chartBarH+2), Width: w, Class: v.class, Text: text, TextX: chartLabel + w + 6,
				Title: fmt.Sprintf("%s %s: %s (%d bytes)", im.Ref, v.what, FormatSize(v.size), v.size),
			})
		}
		out = append(out, ci)
	}
	return out
}

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"inc":       func(i int) int { return i + 1 },
	"size":      FormatSize,
	"pkgsource": packageSourceText,
	"gobinary":  goBinaryText,
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>kiln compare: {{.Report.Baseline}}</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em; color: #1f2328; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
tr.surface th { background: #fff4e5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font-size: 0.95em; }
svg text { font: 12px system-ui, sans-serif; fill: #1f2328; }
svg rect.c { fill: #2f81f7; } svg rect.u { fill: #a5c8fb; }
summary { cursor: pointer; font-weight: 600; }
ul.summary li { margin: 0.2em 0; }
</style>
</head>
<body>
<h1>kiln compare</h1>
<p>Baseline: <code>{{.Report.Baseline}}</code>. Sizes are decimal (1 MB = 1,000,000 bytes); percentages are against the baseline.</p>
{{with .Summary}}<ul class="summary">{{range .}}<li>{{.}}</li>{{end}}</ul>{{end}}
<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="compressed and uncompressed sizes" width="{{.Width}}" height="{{.Height}}" viewBox="0 0 {{.Width}} {{.Height}}">
<rect class="c" x="0" y="4" width="12" height="12"><title>compressed</title></rect><text x="18" y="15">compressed</text>
<rect class="u" x="120" y="4" width="12" height="12"><title>uncompressed</title></rect><text x="138" y="15">uncompressed</text>
{{range .Chart}}<text x="0" y="{{.LabelY}}">{{.Label}}</text>
{{range .Bars}}<rect class="{{.Class}}" x="240" y="{{.Y}}" width="{{.Width}}" height="16"><title>{{.Title}}</title></rect><text x="{{.TextX}}" y="{{.Y}}" dy="12">{{.Text}}</text>
{{end}}{{end}}</svg>
<table>
{{range $i, $r := .Rows}}{{if eq $i 0}}<tr><th></th>{{range $r.Cells}}<th>{{.}}</th>{{end}}</tr>
{{else}}<tr{{if $r.Surface}} class="surface"{{end}}><th>{{$r.Label}}</th>{{range $r.Cells}}<td>{{.}}</td>{{end}}</tr>
{{end}}{{end}}</table>
<p>Highlighted rows are the attack surface.</p>
{{range .Images}}{{$im := .Image}}
<h2>{{.Title}}</h2>
<p><code>{{$im.Digest}}</code>{{with $im.Platform}}, {{.}}{{end}}{{with $im.IndexDigest}}, from the index <code>{{.}}</code>{{end}}</p>
{{range $im.Notes}}<p>Note: {{.}}</p>{{end}}
<details><summary>{{len $im.Layers}} layers</summary>
<table><tr><th>#</th><th>compressed</th><th>uncompressed</th><th>entries</th><th>digest</th><th>created by</th></tr>
{{range $j, $l := $im.Layers}}<tr><td class="num">{{inc $j}}</td><td class="num">{{size $l.CompressedSize}}</td><td class="num">{{size $l.UncompressedSize}}</td><td class="num">{{$l.Entries}}</td><td><code>{{$l.Digest}}</code></td><td>{{$l.CreatedBy}}</td></tr>
{{end}}</table></details>
<details><summary>largest files</summary>
<table><tr><th>size</th><th>mode</th><th>owner</th><th>path</th></tr>
{{range $im.LargestFiles}}<tr><td class="num">{{size .Size}}</td><td><code>{{.Mode}}</code></td><td>{{.UID}}:{{.GID}}</td><td><code>{{.Path}}</code></td></tr>
{{end}}</table></details>
<details><summary>attack surface</summary>
<ul>
<li>shells: {{range $im.Surface.Shells}}<code>{{.}}</code> {{else}}none{{end}}</li>
<li>package managers: {{range $im.Surface.PackageManagers}}<code>{{.}}</code> {{else}}none{{end}}</li>
<li>package databases: {{range $im.Surface.PackageDatabases}}<code>{{.}}</code> {{else}}none{{end}}</li>
<li>compilers: {{range $im.Surface.Compilers}}<code>{{.}}</code> {{else}}none{{end}}</li>
<li>setuid: {{range $im.Surface.Setuid}}<code>{{.}}</code> {{else}}none{{end}}</li>
<li>setgid: {{range $im.Surface.Setgid}}<code>{{.}}</code> {{else}}none{{end}}</li>
<li>world-writable dirs without the sticky bit: {{range $im.Surface.WorldWritableDirs}}<code>{{.}}</code> {{else}}none{{end}}</li>
<li>world-writable dirs with the sticky bit: {{range $im.Surface.WorldWritableSticky}}<code>{{.}}</code> {{else}}none{{end}}</li>
<li>user: <code>{{$im.Config.User}}</code>{{if $im.Surface.RunsAsRoot}} (runs as root){{end}}</li>
<li>entrypoint: <code>{{$im.Config.Entrypoint}}</code>, cmd: <code>{{$im.Config.Cmd}}</code>{{with $im.Config.WorkingDir}}, working dir <code>{{.}}</code>{{end}}</li>
<li>env: {{range $im.Config.Env}}<code>{{.}}</code> {{else}}none{{end}}</li>
{{range $im.GoBinaries}}<li>Go binary {{gobinary .}}</li>{{end}}
</ul></details>
<details><summary>{{len $im.Packages}} packages, {{pkgsource $im}}</summary>
{{with $im.SBOM}}<p>{{.Tag}}: {{.Note}}.</p>{{end}}
<table><tr><th>package</th><th>version</th><th>type</th></tr>
{{range $im.Packages}}<tr><td>{{.Name}}</td><td>{{.Version}}</td><td>{{.Type}}</td></tr>
{{end}}</table>
{{with $im.Delta}}<p>Against the baseline: {{len .PackagesAdded}} added, {{len .PackagesRemoved}} removed, {{len .PackagesChanged}} with other versions.</p>
<ul>{{range .PackagesAdded}}<li>added {{.}}</li>{{end}}{{range .PackagesRemoved}}<li>removed {{.}}</li>{{end}}{{range .PackagesChanged}}<li>changed {{.}}</li>{{end}}</ul>{{end}}
</details>
{{end}}
</body>
</html>
`))

func renderHTML(w io.Writer, r *Report) error {
	v := htmlView{Report: r, Rows: rows(r), Chart: chart(r), Width: chartWidth}
	v.Height = chartTop + len(r.Images)*chartGroupH
	for i := range r.Images {
		im := &r.Images[i]
		v.Images = append(v.Images, htmlImage{Title: imageTitle(i, im), Image: im})
		if d := im.Delta; d != nil {
			v.Summary = append(v.Summary, fmt.Sprintf("%s: %s compressed (%s), %s uncompressed (%s), %d files (%+d).",
				im.Ref, FormatSize(im.CompressedSize), formatPercent(d.CompressedSize), FormatSize(im.UncompressedSize), formatPercent(d.UncompressedSize), im.Files, d.Files.Diff))
		}
	}
	return htmlTemplate.Execute(w, v)
}
