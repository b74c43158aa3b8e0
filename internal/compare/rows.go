package compare

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

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
		if im.SBOM != nil && im.SBOM.Form == SBOMUnsigned {
			return "from the unsigned SBOM attached to the image"
		}
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
		if im.SBOM.Form == SBOMUnsigned {
			return im.SBOM.SPDXVersion + ", unsigned"
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
