#!/usr/bin/env bash
# Build kube-apiserver, kube-scheduler, kube-controller-manager and kubectl
# from the official k8s.io/kubernetes Go module (see hack/kube/go.mod).
#
# Usage: hack/build-kube.sh [--force]
#
# Environment:
#   KUBE_BIN_DIR    use prebuilt binaries from this directory; nothing is built.
#   KUBE_VERSION    version label (default v1.36.2; must match hack/kube/go.mod).
#   KINSHIP_CACHE   cache root (default ~/.cache/kinship).
#
# Output directory: $KINSHIP_CACHE/$KUBE_VERSION/bin. Idempotent: if all four
# binaries are already there the build is skipped. On success the directory
# holding the binaries is printed as the last line of stdout.
#
# A cold build downloads ~200 modules and compiles the whole control plane;
# on 2 cores expect tens of minutes. Later builds reuse Go's build cache.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KUBE_VERSION="${KUBE_VERSION:-v1.36.2}"
KINSHIP_CACHE="${KINSHIP_CACHE:-$HOME/.cache/kinship}"
BINARIES=(kube-apiserver kube-scheduler kube-controller-manager kubectl)
FORCE=0
[[ "${1:-}" == "--force" ]] && FORCE=1

log() { echo "[build-kube] $*" >&2; }

have_all() {
  local dir=$1 b
  for b in "${BINARIES[@]}"; do
    [[ -x "$dir/$b" ]] || return 1
  done
}

if [[ -n "${KUBE_BIN_DIR:-}" ]]; then
  if have_all "$KUBE_BIN_DIR"; then
    log "using prebuilt binaries from KUBE_BIN_DIR=$KUBE_BIN_DIR"
    echo "$KUBE_BIN_DIR"
    exit 0
  fi
  log "KUBE_BIN_DIR=$KUBE_BIN_DIR lacks one of: ${BINARIES[*]}"
  exit 1
fi

OUT="$KINSHIP_CACHE/$KUBE_VERSION/bin"
if [[ $FORCE -eq 0 ]] && have_all "$OUT"; then
  log "binaries present in $OUT; skipping build (use --force to rebuild)"
  echo "$OUT"
  exit 0
fi

# Pin the toolchain: never let go.mod's toolchain line trigger a download of
# another Go (a Go 1.27 build of 1.36 serves broken OpenAPI).
export GOTOOLCHAIN=local
GO_WANT="go1.26"
command -v go >/dev/null || { log "go not found in PATH"; exit 1; }
GO_HAVE="$(go env GOVERSION)"
case "$GO_HAVE" in
  "$GO_WANT" | "$GO_WANT".*) ;;
  *) log "need Go $GO_WANT.x, found $GO_HAVE"; exit 1 ;;
esac

MAJOR="${KUBE_VERSION#v}"; MAJOR="${MAJOR%%.*}"
MINOR="${KUBE_VERSION#v*.}"; MINOR="${MINOR%%.*}"
LDFLAGS="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  LDFLAGS+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=$MAJOR -X $pkg.gitMinor=$MINOR"
  LDFLAGS+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

mkdir -p "$OUT"
TMP_OUT="$(mktemp -d "$OUT/.build.XXXXXX")"
trap 'rm -rf "$TMP_OUT"' EXIT

log "building ${BINARIES[*]} $KUBE_VERSION with $GO_HAVE into $OUT"
start=$(date +%s)
cd "$HERE/kube"
# One invocation so the shared packages compile once.
CGO_ENABLED=0 go build -trimpath -ldflags="$LDFLAGS" -o "$TMP_OUT/" ./cmd/...
for b in "${BINARIES[@]}"; do
  mv -f "$TMP_OUT/$b" "$OUT/$b"
done
elapsed=$(( $(date +%s) - start ))
log "built in ${elapsed}s ($(du -sh "$OUT" | cut -f1) in $OUT)"
echo "$OUT"
