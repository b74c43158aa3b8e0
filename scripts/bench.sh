#!/usr/bin/env bash
# Benchmarks kiln against ko on this repository's ./cmd/server: the same
# package, the same base (kiln's static base, pushed to a loopback registry),
# warm caches, runs alternating. Also times bare `go build` (the floor) and
# reports the bytes of each tool's image. Needs bin/kiln, ko, crane on PATH.
# Usage: scripts/bench.sh [RUNS]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
KILN=$(realpath "${KILN:-bin/kiln}")
for t in ko crane /usr/bin/time; do command -v "$t" >/dev/null || { echo "bench: $t is missing (make tools)" >&2; exit 1; }; done

work=$(mktemp -d)
cleanup() { rm -f internal/server/bench_edit.go; kill "$regpid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
crane registry serve --address "127.0.0.1:$port" >"$work/registry.log" 2>&1 &
regpid=$!
reg="127.0.0.1:$port"
for _ in $(seq 50); do curl -fs "http://$reg/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
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
run_go warmup; run_ko warmup; run_kiln warmup
for _ in $(seq "$RUNS"); do run_go warm; run_ko warm; run_kiln warm; done
report "warm rebuild + push, no source change (this repo's .ko.yaml for both tools)" warm

# A one-line edit before every run: each tool recompiles a package and relinks.
n=0
edit() { n=$((n+1)); echo "var benchEdit$n = $n" >>internal/server/bench_edit.go; }
printf 'package server\n' >internal/server/bench_edit.go
for _ in $(seq "$RUNS"); do edit; run_go edit; edit; run_ko edit; edit; run_kiln edit; done
rm -f internal/server/bench_edit.go
report "rebuild + push after a one-line source edit" edit
echo "  peak RSS, kiln with its go build children (GNU time %M): $(( $(cut -d' ' -f2 "$work/edit.kiln" | sort -n | tail -1) / 1024 )) MiB"

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
ob=$(bytes "$ko_ref"); kb=$(bytes "$kiln_ref"); zb=$(bytes "$zstd_ref")
echo
echo "image bytes (compressed layers + config), each tool at its defaults, same base:"
printf '  %-24s %9s\n' "ko" "$ob" "kiln (gzip)" "$kb" "kiln --compression zstd" "$zb"
awk -v k="$kb" -v o="$ob" -v z="$zb" 'BEGIN {printf "  kiln / ko = %.2fx   kiln zstd / ko = %.2fx\n", k/o, z/o}'
