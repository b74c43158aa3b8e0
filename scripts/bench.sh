#!/usr/bin/env bash
# Benchmarks kiln against ko on this repository's ./cmd/server: the same
# package, the same base (kiln's static base, pushed to a loopback registry),
# warm caches, runs alternating. Also times bare `go build` (the floor) and
# reports the bytes of each tool's image. Needs: bin/kiln, ko, crane on PATH.
# Usage: scripts/bench.sh [RUNS]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
KILN=${KILN:-bin/kiln}
for t in ko crane /usr/bin/time; do command -v "$t" >/dev/null || { echo "bench: $t is missing (make tools)" >&2; exit 1; }; done

work=$(mktemp -d)
trap 'kill $regpid 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
crane registry serve --address "127.0.0.1:$port" >"$work/registry.log" 2>&1 &
regpid=$!
reg="127.0.0.1:$port"
for _ in $(seq 50); do curl -fs "http://$reg/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
base=$("$KILN" base push static "$reg/base/static:latest")
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(go version | cut -d' ' -f3-4), $(ko version 2>/dev/null | head -1 | sed 's/^/ko /')"
echo "base:    $base"

empty_cfg="$work/empty-config"; mkdir -p "$empty_cfg"; : >"$empty_cfg/.ko.yaml"
export KO_DEFAULTBASEIMAGE="$reg/base/static:latest"
export KILN_STORE="$work/store"

# timed NAME CMD... : appends "seconds maxrss_kib" to $work/NAME
timed() {
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/t" "$@" >"$work/out.$name" 2>"$work/err.$name" || { cat "$work/err.$name" >&2; exit 1; }
  cat "$work/t" >>"$work/$name"
}
run_go()   { timed go go build -trimpath -o "$work/server" ./cmd/server; }
run_ko()   { KO_DOCKER_REPO="$reg/ko" timed ko ko build --bare ./cmd/server; }
run_kiln() { timed kiln "$KILN" build --bare --output "$reg/kiln" ./cmd/server; }

# Warm every cache once, then alternate.
run_go; run_ko; run_kiln; rm -f "$work/go" "$work/ko" "$work/kiln"
for _ in $(seq "$RUNS"); do run_go; run_ko; run_kiln; done

median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f", m}'; }
go_s=$(cut -d' ' -f1 "$work/go" | median); ko_s=$(cut -d' ' -f1 "$work/ko" | median); kiln_s=$(cut -d' ' -f1 "$work/kiln" | median)
echo
echo "warm rebuild + push of ./cmd/server, $RUNS runs each, median seconds (this repo's .ko.yaml for both tools):"
printf '  %-22s %6ss\n' "go build (floor)" "$go_s" "ko build" "$ko_s" "kiln build" "$kiln_s"
awk -v g="$go_s" -v k="$ko_s" -v n="$kiln_s" 'BEGIN {printf "  kiln / go build = %.2fx   ko / kiln = %.2fx\n", n/g, k/n}'

# Image bytes with each tool at its defaults (no config file).
image_bytes() { crane manifest "$1" | python3 -c 'import json,sys; m=json.load(sys.stdin); print(sum(l["size"] for l in m["layers"]) + m["config"]["size"])'; }
ko_ref=$(KO_CONFIG_PATH="$empty_cfg" KO_DOCKER_REPO="$reg/ko-default" ko build --bare ./cmd/server 2>/dev/null)
kiln_ref=$(KO_CONFIG_PATH="$empty_cfg" "$KILN" build --bare --output "$reg/kiln-default" ./cmd/server 2>/dev/null)
kiln_zstd=$(KO_CONFIG_PATH="$empty_cfg" "$KILN" build --bare --compression zstd --output "$reg/kiln-zstd" ./cmd/server 2>/dev/null)
kb=$(image_bytes "$kiln_ref"); ob=$(image_bytes "$ko_ref"); zb=$(image_bytes "$kiln_zstd")
echo
echo "image bytes (compressed layers + config), each tool at its defaults, same base:"
printf '  %-22s %10s\n' "ko" "$ob" "kiln (gzip)" "$kb" "kiln --compression zstd" "$zb"
awk -v k="$kb" -v o="$ob" -v z="$zb" 'BEGIN {printf "  kiln / ko = %.2fx   kiln zstd / ko = %.2fx\n", k/o, z/o}'
