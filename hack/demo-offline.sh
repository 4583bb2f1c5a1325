#!/usr/bin/env bash
# The offline demo: serve the example cluster without an API server, ask for scores the way
# kube-scheduler does, and explain one agent of each team. Run through `make demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${KINSHIP_DEMO_PORT:-18888}
KINSHIP=.venv/bin/kinship
ARGS=(--snapshot examples/cluster-snapshot.json
      --graph examples/ops-team-graph.yaml --graph examples/research-team-graph.yaml)

"$KINSHIP" serve "${ARGS[@]}" --port "$PORT" --log-level warning &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break
  sleep 0.1
done

echo "== kinship serve is up (offline). kube-scheduler would POST /prioritize like this:"
echo "   curl -s -d @examples/prioritize-request.json http://127.0.0.1:$PORT/prioritize"
curl -sf -d @examples/prioritize-request.json "http://127.0.0.1:$PORT/prioritize" \
  | .venv/bin/python -c 'import json,sys; print("   " + ", ".join(h["Host"] + "=" + str(h["Score"]) for h in sorted(json.load(sys.stdin), key=lambda h: -h["Score"])))'
echo
echo "== Why: ops team, docs-agent (talks to the orchestrator)"
"$KINSHIP" explain "${ARGS[@]}" --pod examples/ops-team.yaml --name docs-agent
echo
echo "== Why: research team, reviewer (talks to the GPU executor and the planner)"
"$KINSHIP" explain "${ARGS[@]}" --pod examples/research-team.yaml --name reviewer
