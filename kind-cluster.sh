#!/usr/bin/env bash
# Kinship on a kind cluster (Kubernetes in Docker) on a laptop: the image built from the
# Dockerfile and loaded into the kind node, then the install from manifests/ (the extender, the
# second kube-scheduler with the `kinship` profile, RBAC, CRDs, the dashboard ConfigMap).
# ./local-cluster.sh is the variant without Docker that the tests and `make demo` use.
#
# Usage: ./kind-cluster.sh up|down [--name NAME]
#
#   up     create the kind cluster unless it exists, build the image, load it into the cluster,
#          `kubectl apply -k manifests/` and wait for both Deployments to roll out. Run it again
#          after changing the code: it rebuilds, reloads and restarts the extender.
#   down   delete the kind cluster.
#
# Environment (flags win over it):
#   KIND_CLUSTER_NAME  cluster name (default kinship); kubectl's context is kind-NAME
#   KIND_NODE_IMAGE    node image; the default is kind v0.33.0's Kubernetes 1.36 image. A kind
#                      release supports the images its release notes list: pick one of those
#                      for another kind release (1.36 or newer: kube-scheduler is v1.36.2).
#   KUBECTL            kubectl binary (default: kubectl in PATH)
#
# Needs docker with a running engine, kind and kubectl.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
NAME="${KIND_CLUSTER_NAME:-kinship}"
NODE_IMAGE="${KIND_NODE_IMAGE:-kindest/node:v1.36.4@sha256:099e049362a1526b2db71494e1947aae99bd16290d7c895f2b7ea312e3cbfaed}"
KUBECTL="${KUBECTL:-kubectl}"
NAMESPACE="kinship-system" # manifests/kustomization.yaml
DEPLOYMENTS=(kinship-extender kinship-scheduler)

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
log() { echo "[kind-cluster] $*" >&2; }
die() { log "error: $*"; exit 1; }

CMD="${1:-}"
[[ $# -gt 0 ]] && shift
while [[ $# -gt 0 ]]; do
  case "$1" in
    --name) NAME="$2"; shift 2 ;;
    --name=*) NAME="${1#*=}"; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
CONTEXT="kind-$NAME"

need_docker() {
  command -v docker >/dev/null \
    || die "docker not found. Install Docker, or use ./local-cluster.sh, which needs no Docker."
  docker info >/dev/null 2>&1 \
    || die "docker is installed but its engine does not answer (\`docker info\` failed): start Docker."
}

need_kind() {
  command -v kind >/dev/null \
    || die "kind not found: install it (https://kind.sigs.k8s.io/docs/user/quick-start/#installation)."
}

need_kubectl() {
  command -v "$KUBECTL" >/dev/null || die "kubectl not found (KUBECTL=$KUBECTL): install it or set KUBECTL."
}

cluster_exists() { kind get clusters 2>/dev/null | grep -qx "$NAME"; }

kube() { "$KUBECTL" --context "$CONTEXT" "$@"; }

# The extender image the manifests name (their `images:` entry), so that the tag is set in one place.
extender_image() {
  "$KUBECTL" kustomize "$ROOT/manifests" | sed -n 's/^ *image: \(kinship:.*\)$/\1/p' | head -n 1
}

cmd_up() {
  need_docker
  need_kind
  need_kubectl
  if cluster_exists; then
    log "kind cluster $NAME exists; reusing it"
  else
    log "creating kind cluster $NAME ($NODE_IMAGE)"
    kind create cluster --name "$NAME" --image "$NODE_IMAGE" --wait 120s
  fi

  local image
  image="$(extender_image)"
  [[ -n "$image" ]] || die "no kinship image in \`kubectl kustomize manifests/\`"
  log "building $image"
  docker build --tag "$image" "$ROOT"
  log "loading $image into $NAME"
  kind load docker-image "$image" --name "$NAME"

  # Same tag after a rebuild: the running extender would keep the old image without a restart.
  local restart=0
  kube -n "$NAMESPACE" get deployment kinship-extender >/dev/null 2>&1 && restart=1
  log "applying manifests/"
  kube apply -k "$ROOT/manifests"
  if ((restart)); then
    kube -n "$NAMESPACE" rollout restart deployment/kinship-extender
  fi
  local d
  for d in "${DEPLOYMENTS[@]}"; do
    kube -n "$NAMESPACE" rollout status "deployment/$d" --timeout=300s
  done
  cat <<EOF
Kinship is running in kind cluster $NAME (context $CONTEXT).
  pods:       $KUBECTL --context $CONTEXT -n $NAMESPACE get pods
  logs:       $KUBECTL --context $CONTEXT -n $NAMESPACE logs deployment/kinship-extender
  opt in:     spec.schedulerName: kinship in your agents' pod templates
  tear down:  ./kind-cluster.sh down
EOF
}

cmd_down() {
  need_docker
  need_kind
  if cluster_exists; then
    kind delete cluster --name "$NAME"
  else
    log "no kind cluster $NAME"
  fi
}

case "$CMD" in
  up) cmd_up ;;
  down) cmd_down ;;
  *) usage >&2; exit 2 ;;
esac
