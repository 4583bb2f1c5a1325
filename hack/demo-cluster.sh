#!/usr/bin/env bash
# The main demo (`make demo`): a local control plane with the Kinship extender, the example agent
# teams deployed under both schedulers, and where they landed. The cluster stays up afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
STATE="${KINSHIP_STATE_DIR:-$HOME/.cache/kinship/cluster}"

if ! ./local-cluster.sh status >/dev/null 2>&1; then
  ./local-cluster.sh up
fi
set -a
# shellcheck disable=SC1091
. "$STATE/cluster.env"
set +a
.venv/bin/kinship demo --examples examples
cat <<MSG

Look around (the pods stay Pending-but-bound: there is no kubelet, nodes are fake):
  export KUBECONFIG=$KUBECONFIG
  $KINSHIP_KUBECTL get pods -A -o wide --sort-by=.spec.nodeName
  $KINSHIP_KUBECTL get agentgraphs -A
  .venv/bin/kinship explain --snapshot <($KINSHIP_KUBECTL get nodes,pods -A -o json) \\
      --graph examples/research-team-graph.yaml --pod examples/research-team.yaml --name reviewer
Extender metrics: curl -s $KINSHIP_EXTENDER_URL/metrics | grep ^kinship_
Logs: $STATE/logs/
Tear down: ./local-cluster.sh down
MSG
