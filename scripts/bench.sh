#!/usr/bin/env bash
# Benchmarks kiln against ko on this repository's ./cmd/server: the same
# package, the same base (kiln's static base, pushed to a loopback registry),
# warm caches, runs alternating. Also times bare `go build` (the floor) and
# reports the bytes of each tool's image. Needs bin/kiln, ko, crane on PATH.
# Usage: scripts/bench.sh [RUNS]   (default 5; BENCH_ONLY=edit: the edit loop alone;
#   BENCH_RECEIVER=kiln: push to bin/server --registry-only instead of crane's registry)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
KILN=$(realpath "${KILN:-bin/kiln}")
for t in ko crane /usr/bin/time; do command -v "$t" >/dev/null || { echo "bench: $t is missing (make tools)" >&2; exit 1; }; done

work=$(mktemp -d)
cleanup() { rm -f internal/server/bench_edit.go; kill "$regpid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
source scripts/registry.sh
start_registry "$work/registry.log"
base=$("$KILN" base push static "$reg/base/static:latest")
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(go version | cut -d' ' -f3-4), ko $(ko version 2>/dev/null | head -1)"
echo "base:    $base"

export KO_DEFAULTBASEIMAGE="$reg/base/static:latest"
export KILN_STORE="$work/store"

# timed FILE CMD... : runs CMD, appends "seconds maxrss_kib" to $work/FILE
timed() {
  local file=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/t" "$@" >"$work/out" 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
  cat "$work/t" >>"$work/$file"
}
# The floor builds with the flags .ko.yaml gives both tools (netgo, -s -w, the
# version stamp), so that all three link the same binary.
version=$(git describe --tags --always)
run_go()   { CGO_ENABLED=0 timed "$1.go" go build -trimpath -tags=netgo -ldflags="-s -w -X github.com/kilnbuild/kiln/internal/server.Version=$version" -o "$work/server" ./cmd/server; }
run_ko()   { KO_DOCKER_REPO="$reg/ko" timed "$1.ko" ko build --bare ./cmd/server; }
run_kiln() { timed "$1.kiln" "$KILN" build --bare --output "$reg/kiln" ./cmd/server; }
median() { cut -d' ' -f1 "$work/$1" | sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f", m}'; }
report() { # TITLE SET
  local g k n; g=$(median "$2.go"); k=$(median "$2.ko"); n=$(median "$2.kiln")
  echo; echo "$1, $RUNS runs each, median seconds:"
  printf '  %-18s %6ss\n' "go build (floor)" "$g" "ko build" "$k" "kiln build" "$n"
  awk -v g="$g" -v k="$k" -v n="$n" 'BEGIN {printf "  kiln / go build = %.2fx   ko / kiln = %.2fx\n", n/g, k/n}'
}

# Warm every cache once, then alternate with no change to the source.
if [ "${BENCH_ONLY:-}" != edit ]; then
run_go warmup; run_ko warmup; run_kiln warmup
for _ in $(seq "$RUNS"); do run_go warm; run_ko warm; run_kiln warm; done
report "warm rebuild + push, no source change (this repo's .ko.yaml for both tools)" warm
fi

# The edit loop (issue 13): a one-line edit before every run, then each tool
# recompiles one package, relinks and pushes. Runs alternate between the
# tools so that the machine's drift falls on all of them alike; medians.
# edit_loop TITLE DIR EDITFILE PKG SET: DIR is the module, EDITFILE the
# file to append to (deleted after), PKG the main package, SET a name.
edit_loop() {
  local title=$1 dir=$2 editfile=$3 pkg=$4 set=$5 n=0 out=$work/$5.bin
  local pkgname; pkgname=$(sed -n 's/^package //p' "$(dirname "$editfile")"/*.go | grep -v _test | head -1)
  edit() { n=$((n+1)); [ -s "$editfile" ] || printf 'package %s\n' "$pkgname" >"$editfile"; echo "var benchEdit$n = $n" >>"$editfile"; }
  local ldflags; ldflags=$(cd "$dir" && go_ldflags)
  go_()   { (cd "$dir" && CGO_ENABLED=0 timed "$set.go" go build -trimpath -tags=netgo -ldflags="$ldflags" -o "$out" "$pkg"); }
  kiln_() { (cd "$dir" && timed "$set.kiln" "$KILN" build --bare --output "$reg/kiln-$set" "$pkg"); }
  auto_() { (cd "$dir" && timed "$set.auto" "$KILN" build --bare --compression auto --output "$reg/kiln-auto-$set" "$pkg"); }
  ko_()   { (cd "$dir" && KO_DOCKER_REPO="$reg/ko-$set" timed "$set.ko" ko build --bare "$pkg"); }
  edit; go_; edit; kiln_; edit; auto_; edit; ko_   # warm-up, not counted
  : >"$work/$set.go"; : >"$work/$set.kiln"; : >"$work/$set.auto"; : >"$work/$set.ko"
  for _ in $(seq "$RUNS"); do edit; go_; edit; kiln_; edit; auto_; edit; ko_; done
  rm -f "$editfile"
  local g k a o; g=$(median "$set.go"); k=$(median "$set.kiln"); a=$(median "$set.auto"); o=$(median "$set.ko")
  echo; echo "edit loop: $title"
  echo "  one-line edit -> rebuild -> push to a loopback registry (${BENCH_RECEIVER:-crane}), $RUNS runs each alternating, medians (load: $(cut -d' ' -f1-3 /proc/loadavg))"
  echo "  | after a one-line edit | time | ratio |"
  echo "  | --- | ---: | ---: |"
  awk -v g="$g" -v k="$k" -v a="$a" -v o="$o" 'BEGIN {
    printf "  | `go build` (floor) | %.2f s | 1.00x |\n", g
    printf "  | kiln (gzip, the default) | %.2f s | %.2fx |\n", k, k/g
    printf "  | kiln --compression auto (none here) | %.2f s | %.2fx |\n", a, a/g
    printf "  | ko | %.2f s | %.2fx |\n", o, o/g }'
  echo "  binary: $(( $(stat -c %s "$out") / 1048576 )) MiB; peak RSS of kiln with its go build children (GNU time %M): $(( $(cut -d' ' -f2 "$work/$set.kiln" | sort -n | tail -1) / 1024 )) MiB"
}
# go_ldflags prints the ldflags .ko.yaml gives the build in this directory
# (this repository's, or the large service's), so that all three link the
# same binary.
go_ldflags() {
  if [ -f .kiln-bench-large ]; then echo "-s -w"; else echo "-s -w -X github.com/kilnbuild/kiln/internal/server.Version=$version"; fi
}
edit_loop "this repository's ./cmd/server (.ko.yaml's flags for all three)" "$PWD" internal/server/bench_edit.go ./cmd/server server

# A large service: many standard packages and 40 MiB of embedded assets
# (copies of the Go toolchain's own programs: realistic machine code) in a
# package the edit does not touch, so each edit relinks a ~50 MB binary.
large=$work/large
bash scripts/large-service.sh "$large"
edit_loop "a large service (~50 MB binary: many std packages, 40 MiB of embedded assets)" "$large" "$large/cmd/big/bench_edit.go" ./cmd/big large

[ "${BENCH_ONLY:-}" != edit ] || exit 0

# Signing: kiln build --sign (signature + SBOM + provenance, each signed) vs plain, warm.
(cd "$work" && COSIGN_PASSWORD=bench "$KILN" keygen 2>/dev/null)
run_signed() { COSIGN_PASSWORD=bench timed "$1.kiln" "$KILN" build --bare --sign --key "$work/cosign.key" --output "$reg/kiln" ./cmd/server; }
run_signed warmup
for _ in $(seq "$RUNS"); do run_kiln plain; run_signed signed; done
plain=$(median plain.kiln); signed=$(median signed.kiln)
echo
echo "signing overhead (warm, no source change), $RUNS runs each, median seconds:"
printf '  %-18s %6ss\n' "kiln build" "$plain" "kiln build --sign" "$signed"
awk -v p="$plain" -v s="$signed" 'BEGIN {printf "  --sign adds %.0f%%\n", (s/p-1)*100}'

# Image bytes with each tool at its defaults (an empty config file).
empty="$work/empty"; mkdir -p "$empty"; : >"$empty/.ko.yaml"
bytes() { crane manifest "$1" | python3 -c 'import json,sys; m=json.load(sys.stdin); print(sum(l["size"] for l in m["layers"]) + m["config"]["size"])'; }
ko_ref=$(KO_CONFIG_PATH="$empty" KO_DOCKER_REPO="$reg/ko-default" ko build --bare ./cmd/server 2>/dev/null)
kiln_ref=$(KO_CONFIG_PATH="$empty" "$KILN" build --bare --output "$reg/kiln-default" ./cmd/server 2>/dev/null)
zstd_ref=$(KO_CONFIG_PATH="$empty" "$KILN" build --bare --compression zstd --output "$reg/kiln-zstd" ./cmd/server 2>/dev/null)
auto_ref=$(KO_CONFIG_PATH="$empty" "$KILN" build --bare --compression auto --output "$reg/kiln-auto" ./cmd/server 2>/dev/null)
ob=$(bytes "$ko_ref"); kb=$(bytes "$kiln_ref"); zb=$(bytes "$zstd_ref"); ab=$(bytes "$auto_ref")
echo
echo "image bytes (compressed layers + config), each tool at its defaults, same base:"
printf '  %-24s %9s\n' "ko" "$ob" "kiln (gzip)" "$kb" "kiln --compression zstd" "$zb" "kiln --compression auto" "$ab"
awk -v k="$kb" -v o="$ob" -v z="$zb" -v a="$ab" 'BEGIN {printf "  kiln / ko = %.2fx   kiln zstd / ko = %.2fx   kiln auto (none: a loopback registry) / ko = %.2fx\n", k/o, z/o, a/o}'
