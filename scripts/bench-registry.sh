#!/usr/bin/env bash
# Benchmarks kiln's embedded OCI registry against `crane registry serve`, in
# memory and with --disk: each server a child process on 127.0.0.1, the same
# go-containerregistry client, one 100 MiB blob and 1000 blobs of 4 KiB
# (8 in flight) pushed and pulled back. Runs BenchmarkRegistry in
# ./internal/testutil/regbench and prints a markdown table of medians over the runs
# to stdout; go test's own output goes to stderr.
# Needs crane on PATH (installed with .ci/tools.sh when missing). kiln's
# server is $KILN_SERVER_BIN, else ./cmd/server built by this script.
# Usage: scripts/bench-registry.sh [RUNS] [BENCHTIME]   (default 5 3x)
#   SERVERS='kiln|kiln-nosync|crane-mem|crane-disk' (a regexp) selects the
#   servers; kiln-nosync is kiln with --no-fsync-unsafe, which syncs as
#   little as crane --disk does (never).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
BENCHTIME=${2:-3x}
SERVERS=${SERVERS:-kiln|kiln-nosync|crane-mem|crane-disk}
command -v crane >/dev/null || eval "$(bash .ci/tools.sh crane)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The server is built once here, so that every run serves the same binary.
if [ -z "${KILN_SERVER_BIN:-}" ]; then
  go build -o "$work/server" ./cmd/server
  KILN_SERVER_BIN=$work/server
fi
KILN_SERVER_BIN=$(realpath "$KILN_SERVER_BIN")
export KILN_SERVER_BIN
# One go test per run, so that every run starts fresh servers (-count would
# repeat each workload on the same server); within a run the servers take
# turns in order: kiln, kiln without fsync, crane in memory, crane --disk.
cmd=(go test -count 1 -run '^$' -bench "^BenchmarkRegistry\$/^($SERVERS)\$" -benchtime "$BENCHTIME" -timeout 30m ./internal/testutil/regbench/)
for r in $(seq "$RUNS"); do
  echo "bench-registry: run $r of $RUNS" >&2
  "${cmd[@]}" 2>&1 | tee -a "$work/out" >&2
done

cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
echo "machine: $(nproc) cores ($cpu), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(go version | cut -d' ' -f3-4), crane $(crane version 2>/dev/null)"
echo "command: $(printf "%q " "${cmd[@]}")(× $RUNS)"
echo
echo "Medians of $RUNS runs. A run starts each server afresh and runs the workloads on it in the table's order;"
echo "its value for a workload is the mean of -benchtime $BENCHTIME operations, each on content new to the server."
echo "Time per operation (MB/s = 10^6 bytes/s). RSS is the server's: at the workload's start → its peak during it (VmHWM, reset at the start)."
echo
awk '
  function median(key,   n, i, j, t, v) {
    n = split(vals[key], v, " ")
    for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] + 0 > t + 0; j--) v[j + 1] = v[j]; v[j + 1] = t }
    return (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
  }
  function dur(ns) { return ns >= 1e9 ? sprintf("%.2f s", ns / 1e9) : sprintf("%.0f ms", ns / 1e6) }
  function cell(s, w) {
    if (!((s, w, "ns/op") in vals)) return "—"
    return sprintf("%s (%.0f MB/s)", dur(median(s SUBSEP w SUBSEP "ns/op")), median(s SUBSEP w SUBSEP "MB/s"))
  }
  function rss(s, w) {
    if (!((s, w, "peak-RSS-MiB") in vals)) return "—"
    return sprintf("%.0f → %.0f MiB", median(s SUBSEP w SUBSEP "start-RSS-MiB"), median(s SUBSEP w SUBSEP "peak-RSS-MiB"))
  }
  /^BenchmarkRegistry\// {
    split($1, p, "/"); s = p[2]; w = p[3]; sub(/-[0-9]+$/, "", w)
    for (i = 3; i < NF; i += 2) { k = s SUBSEP w SUBSEP $(i + 1); vals[k] = (k in vals) ? vals[k] " " $i : $i }
  }
  END {
    split("push-100MiB pull-100MiB push-1000x4KiB pull-1000x4KiB", ws, " ")
    label["push-100MiB"] = "push 1 × 100 MiB"; label["pull-100MiB"] = "pull 1 × 100 MiB"
    label["push-1000x4KiB"] = "push 1000 × 4 KiB"; label["pull-1000x4KiB"] = "pull 1000 × 4 KiB"
    print "| workload | kiln | kiln --no-fsync-unsafe | crane in-memory | crane --disk | RSS kiln | RSS crane in-memory | RSS crane --disk |"
    print "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for (i = 1; i <= 4; i++) {
      w = ws[i]
      printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", label[w], cell("kiln", w), cell("kiln-nosync", w), cell("crane-mem", w), cell("crane-disk", w), rss("kiln", w), rss("crane-mem", w), rss("crane-disk", w)
    }
  }
' "$work/out"
