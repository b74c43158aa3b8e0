#!/usr/bin/env bash
# Installs what kiln's tests need, idempotently: Debian packages (podman, runc)
# and pinned Go tools into a cache outside the checkout, so a fresh clone on the
# same machine reuses them. Prints the tools directory's env lines for eval.
set -euo pipefail
shopt -s inherit_errexit # a failing build inside "$(go_tool ...)" stops the script

TOOLS="${KILN_TOOLS:-$HOME/.cache/kiln/tools}"
KO_VERSION=v0.19.1
CRANE_VERSION=v0.22.1
COSIGN_VERSION=v3.1.3
HELM_VERSION=v3.22.0
CONFORMANCE_MODULE=github.com/opencontainers/distribution-spec/conformance
CONFORMANCE_VERSION=v0.0.0-20260831232431-97274622c111

log() { printf 'tools: %s\n' "$*" >&2; }

apt_install() {
  local missing=()
  for cmd_pkg in "$@"; do
    local cmd=${cmd_pkg%%:*} pkg=${cmd_pkg##*:}
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    log "missing ${missing[*]} and not root: install them yourself"
    return 0
  fi
  log "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

go_tool() { # name module version
  local name=$1 module=$2 version=$3 dir="$TOOLS/$1-$3"
  if [ ! -x "$dir/$name" ]; then
    log "go install $module@$version (once per machine)"
    mkdir -p "$dir.tmp"
    GOBIN="$dir.tmp" GOFLAGS=-mod=mod CGO_ENABLED=0 go install "$module@$version" >&2
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
  fi
  printf '%s\n' "$dir"
}

# conformance_tool compiles the OCI distribution-spec conformance suite with
# "go test -c". It is a main package, not an installable tool, so it is built
# from a writable copy of its module directory (the module cache is read-only).
conformance_tool() { # version
  local version=$1 dir="$TOOLS/conformance-$1"
  if [ ! -x "$dir/conformance.test" ]; then
    log "go test -c $CONFORMANCE_MODULE@$version (once per machine)"
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp/src"
    local info src
    info=$(cd "$dir.tmp" && GOWORK=off GOFLAGS=-mod=mod go mod download -json "$CONFORMANCE_MODULE@$version") ||
      { log "go mod download $CONFORMANCE_MODULE@$version failed: $info"; exit 1; }
    src=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"$info")
    [ -d "$src" ] || { log "go mod download $CONFORMANCE_MODULE@$version gave no Dir: $info"; exit 1; }
    cp -R "$src/." "$dir.tmp/src/"
    chmod -R u+w "$dir.tmp/src"
    (cd "$dir.tmp/src" && GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0 \
      go test -c -buildvcs=false -ldflags "-X $CONFORMANCE_MODULE.Version=$version" -o "$dir.tmp/conformance.test" . >&2)
    rm -rf "$dir.tmp/src" "$dir" && mv "$dir.tmp" "$dir"
  fi
  printf '%s\n' "$dir"
}

want=${*:-podman ko crane}
paths=()
for w in $want; do
  case $w in
    podman) apt_install podman:podman runc:runc newuidmap:uidmap ;;
    debootstrap) apt_install debootstrap:debootstrap ;;
    chromium) apt_install chromium:chromium ;;
    ko) paths+=("$(go_tool ko github.com/google/ko "$KO_VERSION")") ;;
    crane) paths+=("$(go_tool crane github.com/google/go-containerregistry/cmd/crane "$CRANE_VERSION")") ;;
    cosign) paths+=("$(go_tool cosign github.com/sigstore/cosign/v3/cmd/cosign "$COSIGN_VERSION")") ;;
    helm) paths+=("$(go_tool helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION")") ;;
    conformance) paths+=("$(conformance_tool "$CONFORMANCE_VERSION")") ;;
    *) log "unknown tool $w"; exit 2 ;;
  esac
done
if [ ${#paths[@]} -gt 0 ]; then
  joined=$(IFS=:; echo "${paths[*]}")
  printf 'export PATH=%s:$PATH\n' "$joined"
else
  printf ':\n'
fi
