#!/usr/bin/env bash
# Benchmarks `kiln resolve` against `ko resolve` (issue 14): a generated
# module with five distinct main packages (small net/http servers) and a
# config directory naming each with ko://, resolved by both tools against
# the same loopback registry and base (kiln's static base), for linux/amd64.
# Both run once to warm their caches, then they alternate RUNS times; the
# medians, their ratio and the load average are printed.
# Needs bin/kiln, ko, crane and /usr/bin/time.
# Usage: scripts/bench-resolve.sh [RUNS]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
KILN=$(realpath "${KILN:-bin/kiln}")
for t in ko crane /usr/bin/time; do command -v "$t" >/dev/null || { echo "bench-resolve: $t is missing (make tools)" >&2; exit 1; }; done

work=$(mktemp -d)
cleanup() { kill "$regpid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
source scripts/registry.sh
start_registry "$work/registry.log"
"$KILN" base push static "$reg/base/static:latest" >/dev/null

# The tree: five main packages, one file per package under config/, one of
# them named twice.
mod=$work/mod
mkdir -p "$mod/config"
printf 'module example.com/bench\n\ngo 1.22\n' >"$mod/go.mod"
for p in api auth billing search worker; do
  mkdir -p "$mod/cmd/$p"
  cat >"$mod/cmd/$p/main.go" <<EOF
package main

import (
	"fmt"
	"net/http"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "$p") })
	_ = http.ListenAndServe(":8080", nil)
}
EOF
  cat >"$mod/config/$p.yaml" <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: $p, labels: {app: $p}}
spec:
  template:
    spec:
      containers:
      - name: $p
        image: ko://example.com/bench/cmd/$p
EOF
done
echo "      initContainers: [{name: init, image: ko://example.com/bench/cmd/api}]" >>"$mod/config/worker.yaml"

export KO_DEFAULTBASEIMAGE="$reg/base/static:latest" KO_CONFIG_PATH="" KILN_STORE="$work/store"
echo "machine: $(nproc) cores, $(go version | cut -d' ' -f3-4), ko $(ko version 2>/dev/null | head -1)"

# timed FILE CMD... : runs CMD in the module, appends its seconds to $work/FILE
timed() {
  local file=$1; shift
  (cd "$mod" && /usr/bin/time -f "%e" -o "$work/t" "$@" >"$work/out" 2>"$work/err") || { cat "$work/err" >&2; exit 1; }
  cat "$work/t" >>"$work/$file"
}
run_ko()   { KO_DOCKER_REPO="$reg/ko" timed "$1.ko" ko resolve -f config --platform linux/amd64; }
run_kiln() { KO_DOCKER_REPO="$reg/kiln" timed "$1.kiln" "$KILN" resolve -f config --platform linux/amd64; }
median() { sort -n "$work/$1" | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f", m}'; }

run_ko warmup; run_kiln warmup
for _ in $(seq "$RUNS"); do run_ko warm; run_kiln warm; done
k=$(median warm.ko); n=$(median warm.kiln)
echo
echo "resolve of 5 distinct packages, warm caches, $RUNS runs each alternating, medians (load: $(cut -d' ' -f1-3 /proc/loadavg)):"
printf '  %-14s %6ss\n' "ko resolve" "$k" "kiln resolve" "$n"
awk -v k="$k" -v n="$n" 'BEGIN {printf "  ko / kiln = %.2fx\n", k/n}'
