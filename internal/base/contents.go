package base

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
)

// Content is a third-party component inside the static base, for SBOMs.
type Content struct {
	Name     string
	Version  string
	License  string // SPDX expression or LicenseRef
	Path     string // where it lives in the image
	Supplier string
	Source   string // where it comes from
}

// StaticContents lists what the static base carries that kiln did not
// write itself: the CA bundle and the time zone database.
func StaticContents(goroot string) []Content {
	return []Content{
		{
			Name:     "ca-certificates",
			Version:  fallbackVersion(),
			License:  "MPL-2.0", // the Mozilla NSS root store
			Path:     caBundlePath,
			Supplier: "Organization: Mozilla",
			Source:   fallbackModule,
		},
		{
			Name:     "tzdata",
			Version:  tzdataVersion(goroot),
			License:  "LicenseRef-tzdata-public-domain",
			Path:     zoneinfoDir,
			Supplier: "Organization: IANA",
			Source:   "the Go toolchain's lib/time/zoneinfo.zip",
		},
	}
}

// tzdataVersion reads the DATA= line of GOROOT/lib/time/update.bash, the
// script that made the toolchain's zoneinfo.zip; "" when it cannot.
func tzdataVersion(goroot string) string {
	f, err := os.Open(filepath.Join(goroot, "lib", "time", "update.bash"))
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "DATA="); ok {
			return v
		}
	}
	return ""
}
