package compare

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"sync"
)

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

// truncateLeft keeps the end of s, where references differ.
func truncateLeft(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return "…" + string(r[len(r)-n+1:])
	}
	return s
}

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

// htmlTemplate is parsed when a report is first rendered, not at every
// kiln command's start.
var htmlTemplate = sync.OnceValue(parseHTMLTemplate)

func parseHTMLTemplate() *template.Template {
	return template.Must(template.New("report").Funcs(template.FuncMap{
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
}

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
	return htmlTemplate().Execute(w, v)
}
