#!/usr/bin/env bash
# Writes a large Go service into DIR for the edit-loop benchmark: a module
# whose main links many standard packages and whose assets package embeds
# ~40 MiB (copies of the Go toolchain's own programs: realistic machine
# code, compressible as a binary is). An edit to cmd/big relinks a ~50 MB
# binary without recompiling the assets. DIR/.ko.yaml gives ko and kiln the
# flags the floor uses (netgo, -s -w, CGO_ENABLED=0).
# Usage: scripts/large-service.sh DIR
set -euo pipefail
dir=${1:?usage: large-service.sh DIR}
mkdir -p "$dir/assets" "$dir/cmd/big"
touch "$dir/.kiln-bench-large"
printf 'module example.com/large\n\ngo 1.22\n' >"$dir/go.mod"
printf 'builds:\n- id: big\n  main: ./cmd/big\n  env: [CGO_ENABLED=0]\n  flags: [-tags=netgo]\n  ldflags: [-s, -w]\n' >"$dir/.ko.yaml"
tools=$(go env GOTOOLDIR); i=0; total=0
for f in "$tools"/compile "$tools"/link "$tools"/vet "$tools"/asm "$tools"/cgo "$tools"/cover "$tools"/pprof "$tools"/trace "$tools"/objdump "$tools"/doc; do
  [ -f "$f" ] && [ "$total" -lt $((40 << 20)) ] || continue
  cp "$f" "$dir/assets/blob$i.bin"; total=$((total + $(stat -c %s "$f"))); i=$((i+1))
done
{ echo 'package assets'; echo; echo 'import "embed"'; echo; echo '//go:embed *.bin'; echo 'var FS embed.FS'; } >"$dir/assets/assets.go"
cat >"$dir/cmd/big/main.go" <<'GO'
package main

import (
	"archive/zip"
	"compress/gzip"
	"crypto/tls"
	"database/sql"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"html/template"
	"image/png"
	"io/fs"
	"log/slog"
	"math/big"
	"net/http"
	"net/smtp"
	"os"
	"regexp"
	"text/template/parse"

	"example.com/large/assets"
)

var keep = []any{zip.NewReader, gzip.NewReader, tls.Client, sql.Open, json.Marshal, xml.Marshal,
	template.New, png.Decode, big.NewInt, smtp.Dial, regexp.MustCompile, parse.Parse, slog.New}

func main() {
	n := 0
	fs.WalkDir(assets.FS, ".", func(string, fs.DirEntry, error) error { n++; return nil })
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, n, len(keep)) })
	if len(os.Args) > 1 {
		http.ListenAndServe(os.Args[1], nil)
	}
}
GO
