#!/usr/bin/env bash
# make compare: builds Dockerfile.reference's naive and multi-stage targets with
# podman (daemonless) and ./cmd/server with kiln (static and scratch bases), then
# writes kiln compare's table to OUT/comparison.md, .html and .json.
# Offline, the official Go builder image is replaced by a local stand-in:
# Debian bookworm (debootstrap, with the official image's package list) plus
# this machine's Go.
# Usage: scripts/compare.sh [OUT]   (default docs)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=$(realpath -m "${1:-docs}")
KILN=$(realpath "${KILN:-bin/kiln}")
GO_IMAGE=docker.io/library/golang:1.26-bookworm
TOOLS="${KILN_TOOLS:-$HOME/.cache/kiln/tools}"
podman=(podman --runtime runc)
log() { printf 'compare: %s\n' "$*" >&2; }
now() { date +%s.%N; }
since() { awk -v s="$1" -v e="$(now)" 'BEGIN {printf "%.1f", e-s}'; }

load_start=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo "?")
commit=$(git rev-parse --short HEAD 2>/dev/null || echo "?")
[ -z "$(git status --porcelain 2>/dev/null)" ] || commit="$commit (with uncommitted changes)"
work=$(mktemp -d)
# Each run tags its images kiln-compare/NAME:run-PID, so that runs at the same
# time (make compare, make bench, the end-to-end test) never save each other's
# image; the saved images get the plain kiln-compare/NAME names at the end.
run_tag="run-$$"
built=(naive multistage)
tag() { printf 'kiln-compare/%s:%s' "$1" "$run_tag"; }
cleanup() {
  # IMAGE NAME: podman untag with no NAME removes every name of the image.
  for n in naive multistage plain; do "${podman[@]}" untag "$(tag "$n")" "$(tag "$n")" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$OUT"

# The builder image: the official one when it can be had, else the stand-in.
standin=""
gover=$(go env GOVERSION)
standin_id="bookworm-$gover-v4"
label() { podman image inspect --format '{{index .Config.Labels "dev.kilnbuild.standin"}}' "$GO_IMAGE" 2>/dev/null || true; }
if podman image exists "$GO_IMAGE" && [ -n "$(label)" ] && [ "$(label)" != "$standin_id" ]; then
  podman rmi -f "$GO_IMAGE" >/dev/null   # an older stand-in
fi
if podman image exists "$GO_IMAGE" && [ "$(label)" = "$standin_id" ]; then
  standin="x"
elif ! podman image exists "$GO_IMAGE" && ! timeout 60 podman pull -q "$GO_IMAGE" >/dev/null 2>&1; then
  standin="x"
  tarball="$TOOLS/golang-standin-$standin_id.tar"
  if [ ! -f "$tarball" ]; then
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    [ -n "$mirror" ] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list)
    log "building the stand-in for $GO_IMAGE: debootstrap bookworm from the configured mirror, plus $gover"
    root="$work/rootfs"
    # The packages the official golang:bookworm image carries (its
    # buildpack-deps:bookworm-scm base plus the C toolchain cgo needs).
    pkgs=ca-certificates,curl,gnupg,netbase,wget,git,mercurial,openssh-client,subversion,procps,g++,gcc,libc6-dev,make,pkg-config
    debootstrap --variant=minbase --include="$pkgs" bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
      || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
    # As the official image does: no package lists, no downloaded .debs.
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin
    mkdir -p "$root/usr/local" "$root/go"
    cp -a "$(go env GOROOT)" "$root/usr/local/go"
    # Trust what this machine trusts, so go mod download reaches the module
    # proxy through whatever TLS interception the network has.
    cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
    mkdir -p "$TOOLS"
    tar -C "$root" --numeric-owner -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
  fi
  podman import -q \
    --change 'ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV GOPATH=/go' --change 'ENV GOTOOLCHAIN=local' --change 'WORKDIR /go' \
    --change "LABEL dev.kilnbuild.standin=$standin_id" \
    "$tarball" "$GO_IMAGE" >/dev/null
fi
if [ -n "$standin" ]; then
  standin="a local stand-in for $GO_IMAGE (Debian bookworm with the official image's packages — git, gcc, curl and the rest — this machine's CA bundle and $gover)"
fi

# Both tools build the same copy of the source.
src="$work/src"; mkdir -p "$src"
git ls-files -z | xargs -0 tar -cf - | tar -C "$src" -xf -
edit_n=0
edit() { edit_n=$((edit_n+1)); echo "var compareEdit$edit_n = $edit_n" >>"$src/internal/server/compare_edit.go"; }
printf 'package server\n' >"$src/internal/server/compare_edit.go"

pbuild() { "${podman[@]}" build -q --network=host -f Dockerfile.reference "$@" "$src" >/dev/null; }
declare -A t
s=$(now); pbuild --no-cache --target naive -t "$(tag naive)"; t[naive]=$(since "$s")
s=$(now); pbuild --no-cache -t "$(tag multistage)"; t[ms_cold]=$(since "$s")
# COMPARE_QUICK=1 (the end-to-end test) builds each image once: the sizes
# and files are the same, and the timing rows it skips read "not measured".
quick=${COMPARE_QUICK:-}
t[ms_warm]="not measured"; t[ms_edit]="not measured"; t[plain_edit]="not measured"
if [ -z "$quick" ]; then
  s=$(now); pbuild -t "$(tag multistage)"; t[ms_warm]=$(since "$s")
  edit; s=$(now); pbuild -t "$(tag multistage)"; t[ms_edit]=$(since "$s")
  # The plain reference build: the same multi-stage Dockerfile without its cache
  # mounts, as most Dockerfiles are written. Its layers are warm (go mod download
  # is cached with go.mod), so after an edit go build starts from an empty build
  # cache and compiles every package again.
  sed -E 's/--mount=type=cache,target=[^ ]+ ?//g' Dockerfile.reference >"$work/Dockerfile.plain"
  pbuild_plain() { "${podman[@]}" build -q --network=host -f "$work/Dockerfile.plain" "$@" "$src" >/dev/null; }
  pbuild_plain -t "$(tag plain)"; built+=(plain)
  edit; s=$(now); pbuild_plain -t "$(tag plain)"; t[plain_edit]=$(since "$s")
fi
"${podman[@]}" save -q --format oci-archive -o "$work/naive.tar" "$(tag naive)"
"${podman[@]}" save -q --format oci-archive -o "$work/multistage.tar" "$(tag multistage)"
for n in "${built[@]}"; do "${podman[@]}" tag "$(tag "$n")" "kiln-compare/$n"; done

kbuild() { (cd "$src" && KO_CONFIG_PATH="$src" "$KILN" build --platform linux/amd64 -B "$@" ./cmd/server >/dev/null 2>"$work/kiln.err") || { cat "$work/kiln.err" >&2; exit 1; }; }
[ -n "$quick" ] || export GOCACHE="$work/gocache"   # cold: nothing cached (quick: the caller's Go cache)
export KILN_CACHE="$work/kilncache"
s=$(now); kbuild --output "oci-archive:$work/kiln-static.tar"; t[k_cold]=$(since "$s")
s=$(now); kbuild --output "oci-archive:$work/kiln-static.tar"; t[k_warm]=$(since "$s")
edit; s=$(now); kbuild --output "oci-archive:$work/kiln-static.tar"; t[k_edit]=$(since "$s")
kbuild --base scratch --output "oci-archive:$work/kiln-scratch.tar"

# Relative names read better in the report: compare from inside $work.
images=(oci-archive:naive.tar oci-archive:multistage.tar oci-archive:kiln-static.tar oci-archive:kiln-scratch.tar)
kcompare() { (cd "$work" && "$KILN" compare "$@" "${images[@]}"); }
kcompare --format json >"$OUT/comparison.json"
kcompare --format html --output "$OUT/comparison.html"
{
  echo "# kiln vs Dockerfile.reference: ./cmd/server"
  echo
  echo "Made by \`make compare\` on $(date -u +%Y-%m-%d) at commit $commit, $(nproc) cores, $(go env GOVERSION), $(podman --version)."
  echo "Load average (1 min): $load_start at the start, $(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo "?") at the end: the timings depend on what else runs; the sizes and counts do not."
  [ -n "$standin" ] && echo "The builder image was $standin: no container registry was reachable."
  echo
  echo "Images, in order: naive single-stage (\`--target naive\`), multi-stage (\`FROM scratch\`), kiln on its static base, kiln on scratch."
  echo
  echo "| build | seconds |"
  echo "| --- | ---: |"
  echo "| podman, naive single stage (--no-cache) | ${t[naive]} |"
  echo "| podman, multi-stage, --no-cache (layers rebuilt; the go cache mounts stay warm) | ${t[ms_cold]} |"
  echo "| podman, multi-stage, unchanged | ${t[ms_warm]} |"
  echo "| podman, multi-stage, after a one-line edit | ${t[ms_edit]} |"
  echo "| podman, multi-stage without cache mounts (plain), after a one-line edit | ${t[plain_edit]} |"
  echo "| kiln, cold (empty GOCACHE and kiln cache) | ${t[k_cold]} |"
  echo "| kiln, unchanged | ${t[k_warm]} |"
  echo "| kiln, after a one-line edit | ${t[k_edit]} |"
  echo
  [ -n "$quick" ] || awk -v k="${t[k_edit]}" -v f="${t[ms_edit]}" -v p="${t[plain_edit]}" 'BEGIN {
    printf "After a one-line edit kiln is %.1f× faster than podman with cache mounts and layer cache, and %.0f× faster than the plain multi-stage build.\n", f/k, p/k }'
  echo
  kcompare --format markdown
} >"$OUT/comparison.md"
log "wrote $OUT/comparison.md, $OUT/comparison.html, $OUT/comparison.json"
