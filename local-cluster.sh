#!/usr/bin/env bash
# A real local Kubernetes control plane on 127.0.0.1 for Kinship's tests and demo:
# etcd, kube-apiserver, kube-controller-manager and the default kube-scheduler, built
# from the official Go modules (hack/build-kube.sh), plus fake nodes (Node objects
# without a kubelet: pods are scheduled and bound to them, but never run), the Kinship
# extender in cluster mode and a second kube-scheduler whose profile `kinship` calls it
# (manifests/scheduler/kinship-scheduler-config.yaml with a loopback URL).
#
# Usage: ./local-cluster.sh up|down|status [--nodes N] [--gpu-nodes N] [--state-dir DIR] [--purge]
#        ./local-cluster.sh extender stop|start   (e.g. to see pods schedule without it)
#
#   up       build or locate the binaries, install etcd if missing, start everything,
#            apply manifests/crds/ and create the nodes. Each `up` starts from an empty
#            etcd. If the cluster is already up, `up` only prints how to use it.
#   down     stop exactly the processes `up` started (pid files). --purge also deletes
#            the state directory (certificates, logs).
#   status   exit 0 if every process is alive and the API server is ready, else 1.
#
# Environment (flags win over it):
#   KINSHIP_STATE_DIR     state: pki, kubeconfigs, etcd data, logs/ (default ~/.cache/kinship/cluster)
#   KINSHIP_NODES         number of fake nodes (default 8), across zone-a/b/c
#   KINSHIP_GPU_NODES     how many of them have nvidia.com/gpu (default: a quarter, at least 1)
#   KINSHIP_EXTENDER_URL  use an extender you run yourself at this URL; by default `up`
#                         starts one (`kinship serve`) on a free loopback port
#   KINSHIP_BIN           the kinship CLI (default .venv/bin/kinship, made by `make`)
#   KUBE_BIN_DIR          prebuilt kube-apiserver, kube-scheduler, kube-controller-manager, kubectl
#   ETCD_BIN              etcd binary (default: `etcd` in PATH, else apt-get install etcd-server)
#   KINSHIP_PROFILING     true: serve Go pprof at /debug/pprof on each component's secure port
#                         (read it with the admin certificate in pki/) and on etcd's client URL
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE="${KINSHIP_STATE_DIR:-$HOME/.cache/kinship/cluster}"
NODES="${KINSHIP_NODES:-8}"
GPU_NODES="${KINSHIP_GPU_NODES:-}"
EXTENDER_URL="${KINSHIP_EXTENDER_URL:-}"
KINSHIP_BIN="${KINSHIP_BIN:-$ROOT/.venv/bin/kinship}"
PROFILING="${KINSHIP_PROFILING:-false}"
PURGE=0
KUBE_VERSION="v1.36.2"
SERVICE_CIDR="10.96.0.0/12"
SERVICE_IP="10.96.0.1" # first address of SERVICE_CIDR, in the API server's certificate
# start order; kinship-extender only when `up` runs the extender itself
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kinship-extender kinship-scheduler)

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

CMD="${1:-}"
[[ $# -gt 0 ]] && shift
SUBCMD=""
if [[ "$CMD" == extender ]]; then SUBCMD="${1:-}"; [[ $# -gt 0 ]] && shift; fi
while [[ $# -gt 0 ]]; do
  case "$1" in
    --nodes) NODES="$2"; shift 2 ;;
    --nodes=*) NODES="${1#*=}"; shift ;;
    --gpu-nodes) GPU_NODES="$2"; shift 2 ;;
    --gpu-nodes=*) GPU_NODES="${1#*=}"; shift ;;
    --state-dir) STATE="$2"; shift 2 ;;
    --state-dir=*) STATE="${1#*=}"; shift ;;
    --purge) PURGE=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
[[ "$NODES" =~ ^[0-9]+$ ]] || { echo "--nodes must be a number" >&2; exit 2; }
if [[ -z "$GPU_NODES" ]]; then
  GPU_NODES=$(( NODES / 4 )); (( GPU_NODES == 0 && NODES > 1 )) && GPU_NODES=1
fi
[[ "$GPU_NODES" =~ ^[0-9]+$ ]] && (( GPU_NODES <= NODES )) || { echo "--gpu-nodes must be 0..$NODES" >&2; exit 2; }

PKI="$STATE/pki"
LOGS="$STATE/logs"
PIDS="$STATE/pids"
ENV_FILE="$STATE/cluster.env"
KUBECONFIG_ADMIN="$STATE/kubeconfig"

log() { echo "[local-cluster] $*" >&2 || true; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- processes

pid_of() { # prints the pid of a component we started, if it is still that process
  local name=$1 pid
  [[ -f "$PIDS/$name.pid" ]] || return 1
  pid=$(<"$PIDS/$name.pid")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # guard against pid reuse: the process must still be the one we started
  local pattern=$name
  [[ $name == kinship-extender ]] && pattern="kinship serve"
  [[ "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" == *"$pattern"* ]] || return 1
  echo "$pid"
}

start() { # start NAME BINARY ARGS...: detached, logs to $LOGS/NAME.log, pid to $PIDS/NAME.pid
  local name=$1; shift
  # setsid: not in the caller's process group, so ^C or a test runner's group kill
  # of the calling shell does not take the cluster down half-way.
  setsid "$@" >"$LOGS/$name.log" 2>&1 </dev/null 9>&- &
  echo $! >"$PIDS/$name.pid"
}

stop() {
  local name=$1 pid i
  if pid=$(pid_of "$name"); then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name (pid $pid) did not stop in 10s; killing"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    log "stopped $name (pid $pid)"
  fi
  rm -f "$PIDS/$name.pid"
}

wait_for() { # wait_for DESCRIPTION TIMEOUT_S COMPONENT COMMAND...: poll until COMMAND succeeds
  local what=$1 timeout=$2 comp=$3; shift 3
  local deadline=$(( $(date +%s) + timeout ))
  until "$@" >/dev/null 2>&1; do
    if ! pid_of "$comp" >/dev/null; then
      log "$comp exited; last lines of $LOGS/$comp.log:"
      tail -n 30 "$LOGS/$comp.log" >&2 || true
      die "$what: $comp is not running"
    fi
    if (( $(date +%s) >= deadline )); then
      log "last lines of $LOGS/$comp.log:"
      tail -n 30 "$LOGS/$comp.log" >&2 || true
      die "$what: not ready after ${timeout}s"
    fi
    sleep 0.2
  done
}

free_port() { # a TCP port on 127.0.0.1 nobody listens on now
  if command -v python3 >/dev/null; then
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
    return
  fi
  local p
  while :; do
    p=$(( 20000 + RANDOM % 30000 ))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}

# ---------------------------------------------------------------- prerequisites

ensure_binaries() {
  BIN="$("$ROOT/hack/build-kube.sh" | tail -n 1)"
  KUBECTL="$BIN/kubectl"
  [[ -x "$KUBECTL" ]] || die "no kubectl in $BIN"
}

ensure_etcd() {
  ETCD="${ETCD_BIN:-}"
  if [[ -z "$ETCD" ]]; then
    if ! command -v etcd >/dev/null; then
      log "etcd not found; installing Debian's etcd-server"
      local sudo=""
      [[ $(id -u) -eq 0 ]] || sudo="sudo"
      $sudo apt-get update -qq >&2
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq etcd-server >&2
    fi
    ETCD="$(command -v etcd)" || die "etcd is not installed"
  fi
  [[ -x "$ETCD" ]] || die "etcd binary $ETCD is not executable"
}

# ---------------------------------------------------------------- certificates

gen_key() { [[ -s "$1" ]] || openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

gen_ca() { # gen_ca NAME CN: a self-signed CA $PKI/NAME.{crt,key}
  local name=$1 cn=$2
  [[ -s "$PKI/$name.crt" ]] && return
  gen_key "$PKI/$name.key"
  openssl req -x509 -new -key "$PKI/$name.key" -subj "/CN=$cn" -days 3650 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "$PKI/$name.crt" 2>/dev/null
}

gen_cert() { # gen_cert CA NAME SUBJECT EXTFILE_CONTENT: a cert for $PKI/NAME.key signed by $PKI/CA
  local ca=$1 name=$2 subj=$3 ext=$4
  [[ -s "$PKI/$name.crt" ]] && return
  gen_key "$PKI/$name.key"
  printf '%s\n' "$ext" >"$PKI/$name.ext"
  openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}

ensure_pki() {
  mkdir -p "$PKI"
  chmod 700 "$PKI"
  # leaf certs of an older CA are useless
  [[ -s "$PKI/ca.crt" ]] || rm -f "$PKI"/*.crt
  [[ -s "$PKI/front-proxy-ca.crt" ]] || rm -f "$PKI"/front-proxy-client.crt
  gen_ca ca kinship-local-ca
  # The aggregation layer's request-header CA, kept apart from the client CA (as kubeadm
  # does). The API server publishes it in kube-system/extension-apiserver-authentication,
  # where the scheduler's and controller manager's delegated authentication expect it.
  gen_ca front-proxy-ca kinship-local-front-proxy-ca
  local client="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
  gen_cert ca apiserver "/CN=kube-apiserver" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost,IP:$SERVICE_IP,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  gen_cert ca admin "/O=system:masters/CN=kinship-admin" "$client"
  # Without --use-service-account-credentials every controller runs as this identity,
  # so it needs more than the system:kube-controller-manager role grants.
  gen_cert ca kube-controller-manager "/O=system:masters/CN=system:kube-controller-manager" "$client"
  gen_cert ca kube-scheduler "/CN=system:kube-scheduler" "$client"
  gen_cert front-proxy-ca front-proxy-client "/CN=front-proxy-client" "$client"
  # service-account token signing key pair
  if [[ ! -s "$PKI/sa.key" ]]; then
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$PKI/sa.key" 2>/dev/null
    openssl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  fi
}

write_kubeconfig() { # write_kubeconfig FILE CERTNAME SERVER
  local file=$1 cert=$2 server=$3
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kinship-local
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 <"$PKI/ca.crt")
users:
- name: $cert
  user:
    client-certificate-data: $(base64 -w0 <"$PKI/$cert.crt")
    client-key-data: $(base64 -w0 <"$PKI/$cert.key")
contexts:
- name: kinship-local
  context: {cluster: kinship-local, user: $cert, namespace: default}
current-context: kinship-local
EOF
  chmod 600 "$file"
}

# ---------------------------------------------------------------- nodes

node_manifests() { # one Node per line (JSON), spread over three zones; the last GPU_NODES have GPUs
  local i zone name gpus product labels
  local zones=(zone-a zone-b zone-c)
  for ((i = 0; i < NODES; i++)); do
    name=$(printf 'kinship-node-%02d' "$i")
    zone=${zones[i % 3]}
    labels="\"kubernetes.io/hostname\":\"$name\",\"kubernetes.io/os\":\"linux\",\"kubernetes.io/arch\":\"amd64\",\"topology.kubernetes.io/zone\":\"$zone\",\"topology.kubernetes.io/region\":\"local\""
    gpus=0
    if (( i >= NODES - GPU_NODES )); then
      if (( (NODES - 1 - i) % 2 == 0 )); then gpus=8; product=NVIDIA-A100-SXM4-80GB; else gpus=4; product=NVIDIA-L4; fi
      labels+=",\"nvidia.com/gpu.present\":\"true\",\"nvidia.com/gpu.product\":\"$product\",\"nvidia.com/gpu.count\":\"$gpus\""
    fi
    echo "$name $gpus {\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"$name\",\"labels\":{$labels}}}"
  done
}

node_status() { # node_status GPUS: the status patch that makes a fake node Ready with resources
  local gpus=$1 now res
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  res="\"cpu\":\"16\",\"memory\":\"64Gi\",\"pods\":\"110\",\"ephemeral-storage\":\"200Gi\""
  (( gpus > 0 )) && res+=",\"nvidia.com/gpu\":\"$gpus\""
  local cond=""
  local t s reason
  for t in Ready MemoryPressure DiskPressure PIDPressure; do
    if [[ $t == Ready ]]; then s=True; reason=KinshipFakeNodeReady; else s=False; reason=KinshipFakeNode; fi
    cond+="${cond:+,}{\"type\":\"$t\",\"status\":\"$s\",\"reason\":\"$reason\",\"message\":\"fake node of local-cluster.sh (no kubelet)\",\"lastHeartbeatTime\":\"$now\",\"lastTransitionTime\":\"$now\"}"
  done
  echo "{\"status\":{\"capacity\":{$res},\"allocatable\":{$res},\"conditions\":[$cond],\"nodeInfo\":{\"kubeletVersion\":\"$KUBE_VERSION\",\"operatingSystem\":\"linux\",\"architecture\":\"amd64\",\"containerRuntimeVersion\":\"fake://0\",\"kernelVersion\":\"\",\"osImage\":\"fake\",\"kubeProxyVersion\":\"\",\"machineID\":\"\",\"systemUUID\":\"\",\"bootID\":\"\"}}}"
}

create_nodes() {
  local name gpus json
  while read -r name gpus json; do
    echo "$json" | "$KUBECTL" create -f - >/dev/null
    "$KUBECTL" patch node "$name" --subresource=status --type=merge -p "$(node_status "$gpus")" >/dev/null
    # The NodeTaint admission plugin adds node.kubernetes.io/not-ready:NoSchedule on create;
    # with the node-lifecycle controller off nothing removes it but us.
    "$KUBECTL" patch node "$name" --type=merge -p '{"spec":{"taints":null}}' >/dev/null
  done < <(node_manifests)
}

# ---------------------------------------------------------------- commands

api_ready() { "$KUBECTL" --kubeconfig "$KUBECONFIG_ADMIN" get --raw /readyz; }

# The controller manager and scheduler serve with self-signed certificates made at start.
healthz() { curl -skf --max-time 2 "https://127.0.0.1:$1/healthz"; }

cmd_status() {
  local quiet=${1:-} name pid ok=0
  for name in "${COMPONENTS[@]}"; do
    if [[ $name == kinship-extender ]] && grep -q '^KINSHIP_EXTENDER_EXTERNAL=1' "$ENV_FILE" 2>/dev/null; then
      continue
    fi
    if pid=$(pid_of "$name"); then
      [[ -n $quiet ]] || log "$name running (pid $pid)"
    else
      [[ -n $quiet ]] || log "$name not running"
      ok=1
    fi
  done
  (( ok == 0 )) || return 1
  [[ -f "$ENV_FILE" ]] || return 1
  KUBECTL="$(sed -n 's/^KINSHIP_KUBECTL=//p' "$ENV_FILE")"
  [[ -x "$KUBECTL" ]] || return 1
  if ! api_ready >/dev/null 2>&1; then
    [[ -n $quiet ]] || log "kube-apiserver is not ready"
    return 1
  fi
  if [[ -z $quiet ]]; then
    log "kube-apiserver ready at $(sed -n 's/^KINSHIP_API_SERVER=//p' "$ENV_FILE")"
    echo "export KUBECONFIG=$KUBECONFIG_ADMIN"
  fi
}

cmd_down() {
  local i
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
    stop "${COMPONENTS[i]}"
  done
  rm -rf "$STATE/etcd"
  if (( PURGE )); then
    rm -rf "$STATE"
    log "removed $STATE"
  fi
}

cmd_up() {
  local t0=$SECONDS
  mkdir -p "$STATE" "$LOGS" "$PIDS"
  if cmd_status quiet; then
    log "already up"
    print_usage
    return 0
  fi
  [[ "$PROFILING" == true || "$PROFILING" == false ]] \
    || die "KINSHIP_PROFILING must be true or false, not '$PROFILING'"
  cmd_down 2>/dev/null # whatever is left of an earlier, partial run
  # a failed `up` stops what it started (the logs stay for a look)
  trap 'rc=$?; if (( rc != 0 )); then log "up failed; stopping what was started"; PURGE=0; cmd_down; fi' EXIT

  ensure_binaries
  ensure_etcd
  ensure_pki

  [[ -n "$EXTENDER_URL" || -x "$KINSHIP_BIN" ]] \
    || die "no kinship CLI at $KINSHIP_BIN: run \`make\` first (or set KINSHIP_BIN, or KINSHIP_EXTENDER_URL)"
  local etcd_port etcd_peer_port api_port kcm_port sched_port ksched_port ext_port="" external=0
  etcd_port=$(free_port); etcd_peer_port=$(free_port); api_port=$(free_port)
  kcm_port=$(free_port); sched_port=$(free_port); ksched_port=$(free_port)
  if [[ -n "$EXTENDER_URL" ]]; then
    external=1
  else
    ext_port=$(free_port)
    EXTENDER_URL="http://127.0.0.1:$ext_port"
  fi
  local server="https://127.0.0.1:$api_port"
  write_kubeconfig "$KUBECONFIG_ADMIN" admin "$server"
  write_kubeconfig "$STATE/kube-controller-manager.kubeconfig" kube-controller-manager "$server"
  write_kubeconfig "$STATE/kube-scheduler.kubeconfig" kube-scheduler "$server"
  # The kinship scheduler's config for this cluster: the extender on loopback, and the
  # kubeconfig in the file itself (with --config, kube-scheduler ignores --kubeconfig).
  {
    sed "s#^\(- urlPrefix:\).*#\1 $EXTENDER_URL#" "$ROOT/manifests/scheduler/kinship-scheduler-config.yaml"
    # qps/burst: the client default (50/100) caps bindings at ~55 pods/s, which would hide
    # every difference between the two schedulers in benchmarks/bench_throughput.py.
    printf '# added by local-cluster.sh\nclientConnection:\n  kubeconfig: %s\n  qps: 1000\n  burst: 2000\n' \
      "$STATE/kube-scheduler.kubeconfig"
  } >"$STATE/kinship-scheduler-config.yaml"
  cat >"$ENV_FILE" <<EOF
KINSHIP_STATE_DIR=$STATE
KINSHIP_KUBE_BIN_DIR=$BIN
KINSHIP_KUBECTL=$KUBECTL
KINSHIP_API_SERVER=$server
KUBECONFIG=$KUBECONFIG_ADMIN
KINSHIP_ETCD_URL=http://127.0.0.1:$etcd_port
KINSHIP_SCHEDULER_KUBECONFIG=$STATE/kube-scheduler.kubeconfig
KINSHIP_SCHEDULER_CONFIG=$STATE/kinship-scheduler-config.yaml
KINSHIP_EXTENDER_URL=$EXTENDER_URL
KINSHIP_EXTENDER_PORT=$ext_port
KINSHIP_EXTENDER_EXTERNAL=$external
EOF
  export KUBECONFIG="$KUBECONFIG_ADMIN"

  log "starting etcd on 127.0.0.1:$etcd_port"
  rm -rf "$STATE/etcd"
  local etcd_env=()
  case "$(uname -m)" in x86_64 | amd64) ;; aarch64 | arm64) etcd_env=(env ETCD_UNSUPPORTED_ARCH=arm64) ;; esac
  start etcd "${etcd_env[@]}" "$ETCD" --name kinship --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster "kinship=http://127.0.0.1:$etcd_peer_port" --initial-cluster-state new \
    --logger zap --log-level warn --enable-pprof="$PROFILING"
  wait_for "etcd" 30 etcd curl -sf --max-time 2 "http://127.0.0.1:$etcd_port/health"
  # Move etcd past revision 1 before the API server starts. Its watch caches then begin
  # after revision 1, so a watch from resourceVersion "1" gets 410 Gone, as on any real
  # cluster; on a brand-new etcd the caches would replay the whole history instead.
  local i
  for i in 1 2 3; do
    curl -sf --max-time 5 -X POST "http://127.0.0.1:$etcd_port/v3/kv/put" \
      -d "{\"key\":\"$(printf '/kinship/local-cluster' | base64)\",\"value\":\"$(printf '%s' "$i" | base64)\"}" >/dev/null \
      || die "cannot write to etcd"
  done

  log "starting kube-apiserver on 127.0.0.1:$api_port"
  start kube-apiserver "$BIN/kube-apiserver" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$api_port" \
    --etcd-servers="http://127.0.0.1:$etcd_port" \
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" \
    --requestheader-client-ca-file="$PKI/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="$PKI/front-proxy-client.crt" --proxy-client-key-file="$PKI/front-proxy-client.key" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --endpoint-reconciler-type=none \
    --authorization-mode=Node,RBAC \
    --allow-privileged=true \
    --profiling="$PROFILING"
  wait_for "kube-apiserver /readyz" 120 kube-apiserver api_ready

  log "starting kube-controller-manager (healthz 127.0.0.1:$kcm_port)"
  # Fake nodes: node-lifecycle and taint-eviction would taint them (no kubelet posts status), and
  # the TTL controller annotates every node for kubelets' caches whenever the node count crosses
  # 100, 500, 1,000 or 2,000, at the controller-manager's 20 requests/s: a minute of node updates
  # reaching every scheduler and the extender, which skewed benchmarks/bench_throughput.py.
  local kcm_kc="$STATE/kube-controller-manager.kubeconfig"
  start kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig="$kcm_kc" --authentication-kubeconfig="$kcm_kc" --authorization-kubeconfig="$kcm_kc" \
    --bind-address=127.0.0.1 --secure-port="$kcm_port" \
    --leader-elect=false \
    --controllers='*,-node-lifecycle-controller,-taint-eviction-controller,-ttl-controller' \
    --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
    --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --profiling="$PROFILING"

  log "starting kube-scheduler (default-scheduler; healthz 127.0.0.1:$sched_port)"
  local sched_kc="$STATE/kube-scheduler.kubeconfig"
  start kube-scheduler "$BIN/kube-scheduler" \
    --kubeconfig="$sched_kc" --authentication-kubeconfig="$sched_kc" --authorization-kubeconfig="$sched_kc" \
    --bind-address=127.0.0.1 --secure-port="$sched_port" \
    --leader-elect=false --kube-api-qps=1000 --kube-api-burst=2000 \
    --profiling="$PROFILING"

  log "applying CRDs from manifests/crds/"
  "$KUBECTL" apply -f "$ROOT/manifests/crds/" >/dev/null
  "$KUBECTL" wait --for condition=established --timeout=60s -f "$ROOT/manifests/crds/" >/dev/null

  log "creating $NODES fake nodes ($GPU_NODES with GPUs)"
  create_nodes

  wait_for "kube-controller-manager /healthz" 60 kube-controller-manager healthz "$kcm_port"
  wait_for "kube-scheduler /healthz" 60 kube-scheduler healthz "$sched_port"

  if (( ! external )); then
    start_extender "$ext_port"
  fi
  log "starting kube-scheduler with profile kinship (extender $EXTENDER_URL; healthz 127.0.0.1:$ksched_port)"
  start kinship-scheduler "$BIN/kube-scheduler" --config="$STATE/kinship-scheduler-config.yaml" \
    --authentication-kubeconfig="$sched_kc" --authorization-kubeconfig="$sched_kc" \
    --bind-address=127.0.0.1 --secure-port="$ksched_port" --profiling="$PROFILING"
  wait_for "kinship kube-scheduler /healthz" 60 kinship-scheduler healthz "$ksched_port"
  # Pods are rejected by ServiceAccount admission until the controller made `default`.
  wait_for "ServiceAccount default/default" 60 kube-controller-manager \
    "$KUBECTL" -n default get serviceaccount default

  log "up in $(( SECONDS - t0 ))s; logs in $LOGS"
  print_usage
}

start_extender() { # the extender in cluster mode; ready once its watch caches are synced
  local port=$1
  log "starting the kinship extender on 127.0.0.1:$port"
  start kinship-extender "$KINSHIP_BIN" serve --kubeconfig "$KUBECONFIG_ADMIN" --port "$port" --log-format json
  wait_for "kinship extender /readyz" 60 kinship-extender curl -sf --max-time 2 "http://127.0.0.1:$port/readyz"
}

cmd_extender() {
  [[ -f "$ENV_FILE" ]] || die "no cluster in $STATE: run \`up\` first"
  grep -q '^KINSHIP_EXTENDER_EXTERNAL=0' "$ENV_FILE" || die "the extender is external ($EXTENDER_URL); manage it yourself"
  local port
  port="$(sed -n 's/^KINSHIP_EXTENDER_PORT=//p' "$ENV_FILE")"
  KUBECONFIG="$KUBECONFIG_ADMIN"
  case "$SUBCMD" in
    stop) stop kinship-extender ;;
    start) pid_of kinship-extender >/dev/null && { log "extender already running"; return 0; }
           start_extender "$port" ;;
    *) usage >&2; exit 2 ;;
  esac
}

print_usage() {
  cat <<EOF
kubeconfig: $KUBECONFIG_ADMIN
kinship scheduler config (extender $(sed -n 's/^KINSHIP_EXTENDER_URL=//p' "$ENV_FILE")): $STATE/kinship-scheduler-config.yaml
kubectl: $(sed -n 's/^KINSHIP_KUBECTL=//p' "$ENV_FILE")
export KUBECONFIG=$KUBECONFIG_ADMIN
EOF
}

case "$CMD" in
  up)
    mkdir -p "$STATE"
    # one `up` or `down` at a time for this state directory
    exec 9>"$STATE/.lock"
    command -v flock >/dev/null && flock 9
    cmd_up
    ;;
  down)
    [[ -d "$STATE" ]] || exit 0
    # finish stopping everything even if whoever reads our output went away
    trap '' PIPE
    exec 9>"$STATE/.lock"
    command -v flock >/dev/null && flock 9
    cmd_down
    ;;
  status) cmd_status ;;
  extender) cmd_extender ;;
  *) usage >&2; exit 2 ;;
esac
