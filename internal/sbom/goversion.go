package sbom

import (
	"runtime/debug"
	"strings"
)

// GoVersionM is what `go version -m` prints for a binary at appPath with
// build info bi: "PATH: GOVERSION", then each line of the build info but
// the go line, indented by a tab. ko attaches it with the binary's path
// in the image, so that it does not depend on where the binary was built.
func GoVersionM(appPath string, bi *debug.BuildInfo) []byte {
	var b strings.Builder
	b.WriteString(appPath + ": " + bi.GoVersion + "\n")
	c := *bi
	c.GoVersion = "" // printed above, as go version -m does
	for line := range strings.Lines(c.String()) {
		b.WriteString("\t" + line)
	}
	return []byte(b.String())
}
