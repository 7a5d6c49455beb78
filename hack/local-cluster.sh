#!/usr/bin/env bash
# hack/local-cluster.sh: a real single-node Kubernetes on this machine, made of local processes
# (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy,
# containerd + runc + the CNI bridge, local-path-provisioner). No Docker, no registry: images
# are docker-archive tarballs made by hack/images.sh and imported with ctr. Needs root.
#
#   up [--nodes N]           install missing Debian packages, build missing binaries, start everything,
#                            wait for the nodes, a default StorageClass and the kubernetes Service.
#                            N nodes (1 or 2; default $LK_NODES, else 1): node 2 is a second kubelet
#                            and containerd on this machine (hack/local-cluster/node.sh).
#                            Safe to re-run: a running cluster of that size is left alone.
#   down [--purge]           stop everything; --purge also removes the cluster's state (not bin/k8s, bin/tools)
#   status                   component processes, node, StorageClass, in-cluster API path
#   env                      prints: export KUBECONFIG=<state>/kubeconfig/admin.kubeconfig
#   node-stop N | node-start N  stop node N's kubelet (its containers go on: a node that stopped
#                            answering, as the e2e loses one), or start it again and wait for Ready
#   load-image X REF         import X (a docker-archive tarball, or a root filesystem directory,
#                            packed as one layer) into containerd's k8s.io namespace as REF (NAME:TAG)
#
# Environment:
#   LK_DIR          state dir (default <repo>/bin/local-cluster)
#   LK_LOCAL_PATH_DIR  where local-path-provisioner puts volumes (default $LK_DIR/local-path)
#   LK_NODES        nodes up starts when not given --nodes (default 1)
#   LK_IMAGES       images built and imported by up (default "pause busybox go postgres"):
#                   localhost/pause:local, localhost/busybox:local, localhost/go:local,
#                   localhost/postgres:local (skipped, with a warning, without Debian's postgresql)
#   K8S_VERSION     1.37.2; binaries are cached in bin/k8s/<version>-<key of hack/k8s/go.{mod,sum}>,
#                   the directory hack/envtest-assets.sh uses (K8S_BIN overrides it)
#   LOCAL_PATH_PROVISIONER_VERSION  v0.0.30, installed into bin/tools (TOOLS_BIN overrides it)
#   API_PORT ETCD_PORT POD_SUBNET SVC_RANGE BRIDGE  6443 2379 10.88.0.0/24 10.0.0.0/24 lk8s0 (node 1's;
#                   node N's pods get the Nth /24 after it and the bridge lk8s<N-1>)
# kubectl is the one on PATH; without one, up builds cmd/kubectl v1.37.2 into the binaries dir.
#
# In-cluster API access: kube-apiserver listens on the bridge gateway (10.88.0.1:6443), which is also
# the `kubernetes` Service's endpoint, and kube-proxy (iptables mode) maps the Service IP (10.0.0.1:443)
# there. So pods reach the API through the KUBERNETES_SERVICE_HOST/PORT that kubelet injects, and
# nothing listens on the machine's external interface. There is no cluster DNS: pods fall back to
# the host's resolv.conf (use dnsPolicy: Default to avoid the MissingClusterDNS event).
#
# The apiserver audits what ServiceAccounts write (logs/audit.log, with each request's
# source address): the e2e reads it to show which operator replica wrote what, and when.
set -euo pipefail
umask 022 # image layers and state: readable by the non-root users in pods

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=hack/images.sh
. "$ROOT/hack/images.sh"
# shellcheck source=hack/local-cluster/node.sh
. "$ROOT/hack/local-cluster/node.sh"

K8S_VERSION=${K8S_VERSION:-1.37.2}
# Same key as hack/envtest-assets.sh: one build serves envtest and this cluster.
KEY=$(cat "$ROOT/hack/k8s/go.mod" "$ROOT/hack/k8s/go.sum" | sha256sum | cut -c1-12)
K8S_BIN=${K8S_BIN:-$ROOT/bin/k8s/$K8S_VERSION-$KEY}
TOOLS_BIN=${TOOLS_BIN:-$ROOT/bin/tools}
LOCAL_PATH_PROVISIONER_VERSION=${LOCAL_PATH_PROVISIONER_VERSION:-v0.0.30}
LK_DIR=$(realpath -m "${LK_DIR:-$ROOT/bin/local-cluster}")
LK_LOCAL_PATH_DIR=$(realpath -m "${LK_LOCAL_PATH_DIR:-$LK_DIR/local-path}")
LK_IMAGES=${LK_IMAGES:-pause busybox go postgres}
LK_NODES=${LK_NODES:-1}
API_PORT=${API_PORT:-6443}
ETCD_PORT=${ETCD_PORT:-2379}
POD_SUBNET=${POD_SUBNET:-10.88.0.0/24}
SVC_RANGE=${SVC_RANGE:-10.0.0.0/24}
BRIDGE=${BRIDGE:-lk8s0}
PODNET=${POD_SUBNET%/*}
# What kube-proxy counts as pod traffic: every node's /24 (a /16 around node 1's).
CLUSTER_CIDR=${PODNET%.*.*}.0.0/16
API_ADDR=${PODNET%.*}.$((${PODNET##*.} + 1)) # the bridge gateway, 10.88.0.1
SVCNET=${SVC_RANGE%/*}
SVC_API_IP=${SVCNET%.*}.$((${SVCNET##*.} + 1)) # the `kubernetes` Service, 10.0.0.1
PAUSE_IMAGE=localhost/pause:local
BUSYBOX_IMAGE=localhost/busybox:local
GO_IMAGE=localhost/go:local
POSTGRES_IMAGE=localhost/postgres:local
COMPONENTS=(containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy local-path-provisioner)
# node_components N: the processes of nodes 2..N (containerd-2, kubelet-2, ...).
node_components() {
  local n
  for n in $(seq 2 "$1"); do printf 'containerd-%s kubelet-%s ' "$n" "$n"; done
}
APT_PACKAGES=(containerd containernetworking-plugins etcd-server runc busybox-static iptables gcc openssl curl)

P=$LK_DIR/pki
KC=$LK_DIR/kubeconfig
L=$LK_DIR/logs
PIDS=$LK_DIR/pids
export KUBECONFIG=$KC/admin.kubeconfig

log() { printf '%s local-cluster: %s\n' "$(date +%T)" "$*"; }
die() {
  printf '%s local-cluster: ERROR: %s\n' "$(date +%T)" "$*" >&2
  [ -z "${UP_STARTED:-}" ] || printf '%s local-cluster: what up started is still running: run up again (it restarts it) or down\n' "$(date +%T)" >&2
  exit 1
}
kubectl_() { "$KUBECTL" "$@"; }

# start NAME CMD...: runs detached in its own session; output in $L/NAME.log, pid in $PIDS/NAME.pid.
start() {
  local n=$1
  shift
  setsid "$@" >> "$L/$n.log" 2>&1 < /dev/null &
  echo $! > "$PIDS/$n.pid"
}
# alive NAME: the pid file names a live process that is still that component (kubelet-2 is a kubelet).
alive() {
  local f=$PIDS/$1.pid p
  [ -f "$f" ] || return 1
  p=$(cat "$f")
  [ -n "$p" ] && kill -0 "$p" 2> /dev/null && grep -qa -- "${1%-[0-9]*}" "/proc/$p/cmdline" 2> /dev/null
}
# waitfor DESC TIMEOUT COMPONENT CMD...: polls CMD; on timeout prints COMPONENT's log tail and fails.
waitfor() {
  local d=$1 t=$2 c=$3
  shift 3
  local end=$((SECONDS + t))
  until "$@" > /dev/null 2>&1; do
    if [ $SECONDS -ge $end ] || { [ -n "$c" ] && ! alive "$c"; }; then
      [ -n "$c" ] && [ -f "$L/$c.log" ] && { echo "--- last lines of $L/$c.log:" >&2; tail -n 25 "$L/$c.log" >&2; }
      die "timeout or exit waiting for $d (logs: $L/)"
    fi
    sleep 0.25
  done
  log "$d: ok"
}

# ---------------------------------------------------------------------------------------------
# Prerequisites

ensure_packages() {
  local need=() p
  if command -v dpkg-query > /dev/null; then
    for p in "${APT_PACKAGES[@]}"; do
      [ "$(dpkg-query -W -f='${Status}' "$p" 2> /dev/null || true)" = "install ok installed" ] || need+=("$p")
    done
  fi
  if [ ${#need[@]} -gt 0 ]; then
    command -v apt-get > /dev/null || die "missing packages ${need[*]} and no apt-get"
    log "installing ${need[*]} (apt-get update once, then install)"
    mkdir -p "$L"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"; } \
      > "$L/apt.log" 2>&1 || { tail -n 20 "$L/apt.log" >&2; die "apt-get install failed (see $L/apt.log)"; }
    log "packages installed"
  fi
  for p in etcd containerd containerd-shim-runc-v2 runc ctr iptables openssl curl gcc ip setsid; do
    command -v "$p" > /dev/null || die "missing command $p"
  done
  [ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] || die "missing /usr/lib/cni/{bridge,host-local} (containernetworking-plugins)"
  [ -x /usr/bin/busybox ] || die "missing /usr/bin/busybox (busybox-static)"
}

# go_build_k8s MODDIR MODFLAG CMD...: builds k8s.io/kubernetes/cmd/CMD... from module MODDIR into $K8S_BIN,
# stamped with the release version like hack/envtest-assets.sh does.
go_build_k8s() {
  local moddir=$1 modflag=$2
  shift 2
  local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=v$K8S_VERSION -X k8s.io/client-go/pkg/version.gitVersion=v$K8S_VERSION"
  local pkgs=() c out=$K8S_BIN/.build.$$ start=$SECONDS hb rc=0
  for c in "$@"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  mkdir -p "$out"
  (while sleep 60; do log "  ... still building $* ($((SECONDS - start)) s)"; done) &
  hb=$!
  (cd "$moddir" && CGO_ENABLED=0 go build $modflag -trimpath -ldflags "$ldflags" -o "$out/" "${pkgs[@]}") || rc=$?
  kill "$hb" 2> /dev/null || true
  wait "$hb" 2> /dev/null || true
  if [ $rc -ne 0 ]; then
    rm -rf "$out"
    die "go build of $* failed"
  fi
  for c in "$@"; do mv -f "$out/$c" "$K8S_BIN/$c"; done
  rmdir "$out"
  log "built $* in $((SECONDS - start)) s"
}

# ensure_k8s_binaries: the control-plane and node binaries from hack/k8s as pinned (hack/k8s/tools.go
# lists them); kubectl, only when none is installed, from a scratch copy of that module, because
# hack/k8s/go.sum does not cover it: `-mod=mod` there only adds go.sum lines, the versions stay those
# k8s.io/kubernetes v1.37.2 requires.
ensure_k8s_binaries() {
  mkdir -p "$K8S_BIN"
  local missing=() extra=() b
  for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy; do
    [ -x "$K8S_BIN/$b" ] || missing+=("$b")
  done
  if ! command -v kubectl > /dev/null && [ ! -x "$K8S_BIN/kubectl" ]; then extra+=(kubectl); fi
  if [ ${#missing[@]} -gt 0 ]; then
    log "building ${missing[*]} v$K8S_VERSION into $K8S_BIN (cold: about 11 min on 2 cores, 3.8 GB of build cache)"
    go_build_k8s "$ROOT/hack/k8s" "" "${missing[@]}"
  fi
  if [ ${#extra[@]} -gt 0 ]; then
    local pkgs=() c
    for c in "${extra[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
    log "building ${extra[*]} v$K8S_VERSION into $K8S_BIN (a few minutes cold)"
    if (cd "$ROOT/hack/k8s" && go list -deps "${pkgs[@]}" > /dev/null 2>&1); then
      go_build_k8s "$ROOT/hack/k8s" "" "${extra[@]}"
    else
      local tmp
      tmp=$(mktemp -d "${TMPDIR:-/tmp}/lk-k8smod.XXXXXX")
      cp "$ROOT/hack/k8s/go.mod" "$ROOT/hack/k8s/go.sum" "$tmp/"
      go_build_k8s "$tmp" -mod=mod "${extra[@]}"
      rm -rf "$tmp"
    fi
  fi
}

ensure_local_path_provisioner() {
  local bin=$TOOLS_BIN/local-path-provisioner
  if [ -x "$bin" ] && [[ "$(go version -m "$bin" 2> /dev/null || true)" =~ [[:space:]]mod[[:space:]]+github.com/rancher/local-path-provisioner[[:space:]]+$LOCAL_PATH_PROVISIONER_VERSION[[:space:]] ]]; then
    return 0
  fi
  log "installing local-path-provisioner $LOCAL_PATH_PROVISIONER_VERSION into $TOOLS_BIN (2-7 min cold)"
  local start=$SECONDS
  mkdir -p "$TOOLS_BIN"
  GOBIN=$TOOLS_BIN CGO_ENABLED=0 go install -trimpath "github.com/rancher/local-path-provisioner@$LOCAL_PATH_PROVISIONER_VERSION" ||
    die "go install local-path-provisioner@$LOCAL_PATH_PROVISIONER_VERSION failed"
  log "local-path-provisioner installed in $((SECONDS - start)) s"
}

find_kubectl() {
  KUBECTL=$(command -v kubectl || true)
  [ -n "$KUBECTL" ] || KUBECTL=$K8S_BIN/kubectl
  [ -x "$KUBECTL" ] || die "no kubectl on PATH or in $K8S_BIN (up builds one)"
}

# ---------------------------------------------------------------------------------------------
# State: PKI, kubeconfigs, component configs, images

# pki_key FILE and pki_sign NAME CN O SAN EKU, run in $P: ECDSA P-256 keys (generated
# instantly, where 2048-bit RSA takes about 6 s for all of them) and certificates the CA signs.
pki_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2> /dev/null; }
pki_sign() {
  local name=$1 cn=$2 o=$3 san=$4 eku=$5 subj="/CN=$2"
  [ -n "$o" ] && subj="/O=$o/CN=$cn"
  pki_key "$name.key"
  openssl req -new -key "$name.key" -subj "$subj" -out "$name.csr" 2> /dev/null
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature"
    echo "extendedKeyUsage=$eku"
    [ -n "$san" ] && echo "subjectAltName=$san"
  } > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -sha256 \
    -extfile "$name.ext" -out "$name.crt" 2> /dev/null
  rm -f "$name.csr" "$name.ext"
  chmod 0600 "$name.key"
}

# write_kubeconfig WHO: $KC/WHO.kubeconfig with the certificate $P/WHO.crt.
write_kubeconfig() {
  local who=$1
  cat > "$KC/$who.kubeconfig" << KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://$API_ADDR:$API_PORT
    certificate-authority-data: $(base64 -w0 < "$P/ca.crt")
users:
- name: $who
  user:
    client-certificate-data: $(base64 -w0 < "$P/$who.crt")
    client-key-data: $(base64 -w0 < "$P/$who.key")
contexts:
- name: local
  context: {cluster: local, user: $who}
current-context: local
KUBECONFIG
  chmod 0600 "$KC/$who.kubeconfig"
}

# gen_pki: the CA and the control plane's certificates and kubeconfigs (each node's are made
# by gen_node_pki).
gen_pki() {
  mkdir -p "$P" "$KC"
  (
    cd "$P"
    pki_key ca.key
    openssl req -x509 -new -key ca.key -sha256 -days 3650 -subj "/CN=flow-ci-local-ca" -out ca.crt 2> /dev/null
    pki_key sa.key
    openssl pkey -in sa.key -pubout -out sa.pub 2> /dev/null
    pki_sign apiserver kube-apiserver "" "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:$API_ADDR,IP:$SVC_API_IP" serverAuth
    pki_sign apiserver-kubelet-client kube-apiserver-kubelet-client system:masters "" clientAuth
    pki_sign admin admin system:masters "" clientAuth
    pki_sign controller-manager system:kube-controller-manager "" "" clientAuth
    pki_sign scheduler system:kube-scheduler "" "" clientAuth
    pki_sign kube-proxy system:kube-proxy "" "" clientAuth
  )
  local who
  for who in admin controller-manager scheduler kube-proxy; do write_kubeconfig "$who"; done
  chmod 0600 "$P"/*.key
}

write_configs() {
  mkdir -p "$LK_DIR/kube-proxy" "$LK_DIR/local-path-provisioner"
  cat > "$LK_DIR/kube-proxy/config.yaml" << EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $KC/kube-proxy.kubeconfig}
hostnameOverride: "127.0.0.1"
bindAddress: $API_ADDR
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
mode: iptables
clusterCIDR: $CLUSTER_CIDR
detectLocalMode: ClusterCIDR
# NodePorts answer on the bridge gateway only, never on the machine's own interfaces.
nodePortAddresses: ["$API_ADDR/32"]
oomScoreAdj: 0
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {localhostNodePorts: false, masqueradeAll: false, syncPeriod: 30s, minSyncPeriod: 1s}
EOF
}

image_tar() { echo "$LK_DIR/images/$(echo "$1" | tr '/:' '__').tar"; }

# image_ref NAME: the reference of an image of LK_IMAGES.
image_ref() {
  case "$1" in
    pause) echo "$PAUSE_IMAGE" ;;
    busybox) echo "$BUSYBOX_IMAGE" ;;
    go) echo "$GO_IMAGE" ;;
    postgres) echo "$POSTGRES_IMAGE" ;;
    *) die "LK_IMAGES: unknown image '$1' (pause, busybox, go, postgres)" ;;
  esac
}

build_images() {
  mkdir -p "$LK_DIR/images"
  local i ref out
  for i in $LK_IMAGES; do
    ref=$(image_ref "$i")
    out=$(image_tar "$ref")
    [ -s "$out" ] && continue
    if [ "$i" = postgres ] && ! ls /usr/lib/postgresql/*/bin/postgres > /dev/null 2>&1; then
      log "warning: no PostgreSQL under /usr/lib/postgresql (apt-get install postgresql): $ref not built"
      continue
    fi
    "img_$i" "$ref" "$out" || die "building image $ref failed"
    log "image $ref built ($(du -h "$out" | cut -f1))"
  done
}

# Kernel settings the cluster changes on the machine: the CNI bridge plugin turns on IPv4 forwarding
# (isGateway), and kubelet sets its "kernel defaults" (overcommit, panic on oops, panic after 10 s,
# key quotas). The values from before the first up are kept in the state dir and put back by down.
HOST_SYSCTLS=(net/ipv4/ip_forward vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops kernel/keys/root_maxkeys kernel/keys/root_maxbytes)
save_host_sysctls() {
  local k
  [ -f "$LK_DIR/host-sysctls" ] && return 0
  for k in "${HOST_SYSCTLS[@]}"; do
    [ -r "/proc/sys/$k" ] && echo "$k $(cat "/proc/sys/$k")"
  done > "$LK_DIR/host-sysctls"
}
restore_host_sysctls() {
  local k v
  [ -f "$LK_DIR/host-sysctls" ] || return 0
  while read -r k v; do
    [ "$(cat "/proc/sys/$k" 2> /dev/null)" = "$v" ] || echo "$v" > "/proc/sys/$k" 2> /dev/null || log "could not restore $k=$v"
  done < "$LK_DIR/host-sysctls"
}

# The bridge exists before kube-apiserver, which listens on its gateway address; the CNI bridge plugin
# adopts it (same name, same gateway).
ensure_bridge() {
  ip link show "$BRIDGE" > /dev/null 2>&1 || ip link add "$BRIDGE" type bridge
  [[ "$(ip -4 addr show dev "$BRIDGE")" == *"inet $API_ADDR/"* ]] || ip addr add "$API_ADDR/${POD_SUBNET#*/}" dev "$BRIDGE"
  ip link set "$BRIDGE" up
}

# ---------------------------------------------------------------------------------------------
# Subcommands

up() {
  case "${1:-}" in
    "") ;;
    --nodes) LK_NODES=${2:-} ;;
    *) die "usage: $0 up [--nodes N]" ;;
  esac
  [[ "$LK_NODES" =~ ^[12]$ ]] || die "--nodes must be 1 or 2, not '$LK_NODES'"
  [ "$(id -u)" = 0 ] || die "needs root (containerd, kubelet, mounts, iptables)"
  local c n running=() stopped=()
  # A cluster never shrinks under its pods: a state dir made for more nodes keeps them all.
  n=$(nodes_of_state | tail -n 1)
  [ "$n" -le "$LK_NODES" ] || { log "the state has $n nodes: keeping them (down --purge to start smaller)"; LK_NODES=$n; }
  for c in "${COMPONENTS[@]}" $(node_components "$LK_NODES"); do
    if alive "$c"; then running+=("$c"); else stopped+=("$c"); fi
  done
  if [ ${#stopped[@]} -eq 0 ]; then
    log "already up (state $LK_DIR); export KUBECONFIG=$KUBECONFIG"
    return 0
  fi
  if [ ${#running[@]} -gt 0 ]; then
    log "partly up (not running: ${stopped[*]}): stopping the rest, then starting again"
    down
  fi
  local T0=$SECONDS
  log "up: state $LK_DIR, binaries $K8S_BIN"
  ensure_packages
  ensure_k8s_binaries
  ensure_local_path_provisioner
  find_kubectl

  mkdir -p "$L" "$PIDS" "$LK_DIR/etcd" "$LK_LOCAL_PATH_DIR"
  # A go.mod makes the state dir its own module, so `go vet ./...` and friends in the repository skip
  # it (it holds containerd snapshots with a whole Go toolchain, and pod volumes).
  [ -f "$LK_DIR/go.mod" ] || printf '// Cluster state of hack/local-cluster.sh: not Go code.\nmodule local-cluster-state\n' > "$LK_DIR/go.mod"
  if [ ! -f "$P/ca.crt" ]; then
    gen_pki
    log "PKI and kubeconfigs generated"
  elif ! grep -qE "IP Address:${API_ADDR//./\\.}(,|$)" <<< "$(openssl x509 -in "$P/apiserver.crt" -noout -text)"; then
    die "$P was made for another API address than $API_ADDR: run '$0 down --purge' first"
  fi
  for n in $(seq 1 "$LK_NODES"); do
    gen_node_pki "$n"
    write_node_configs "$n"
  done
  write_configs
  save_host_sysctls
  ensure_bridge
  build_images

  UP_STARTED=1
  for n in $(seq 1 "$LK_NODES"); do start_node_runtime "$n"; done

  start etcd etcd --name localk8s --data-dir "$LK_DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
    --initial-cluster "localk8s=http://127.0.0.1:$((ETCD_PORT + 1))" --listen-metrics-urls "http://127.0.0.1:$((ETCD_PORT + 2))"
  waitfor etcd 30 etcd curl -sf "http://127.0.0.1:$ETCD_PORT/health"

  start kube-apiserver "$K8S_BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" --bind-address="$API_ADDR" --advertise-address="$API_ADDR" --secure-port="$API_PORT" \
    --tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key" --client-ca-file="$P/ca.crt" \
    --kubelet-client-certificate="$P/apiserver-kubelet-client.crt" --kubelet-client-key="$P/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types=InternalIP,Hostname \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$P/sa.pub" --service-account-signing-key-file="$P/sa.key" \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
    --service-cluster-ip-range="$SVC_RANGE" --allow-privileged=true --profiling=false \
    --audit-policy-file="$ROOT/hack/local-cluster/audit-policy.yaml" --audit-log-path="$L/audit.log" \
    --audit-log-format=json --audit-log-maxsize=100 --audit-log-maxbackup=1
  waitfor kube-apiserver 120 kube-apiserver kubectl_ get --raw /readyz

  # No --enable-hostpath-provisioner: its volumes are 0750 root, useless to non-root pods.
  start kube-controller-manager "$K8S_BIN/kube-controller-manager" \
    --kubeconfig="$KC/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$KC/controller-manager.kubeconfig" --authorization-kubeconfig="$KC/controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port=10257 --leader-elect=false \
    --service-account-private-key-file="$P/sa.key" --root-ca-file="$P/ca.crt" --use-service-account-credentials=true \
    --cluster-signing-cert-file="$P/ca.crt" --cluster-signing-key-file="$P/ca.key" \
    --controllers='*' --profiling=false
  start kube-scheduler "$K8S_BIN/kube-scheduler" \
    --kubeconfig="$KC/scheduler.kubeconfig" \
    --authentication-kubeconfig="$KC/scheduler.kubeconfig" --authorization-kubeconfig="$KC/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port=10259 --leader-elect=false --profiling=false
  for n in $(seq 1 "$LK_NODES"); do start_kubelet "$n"; done
  start kube-proxy "$K8S_BIN/kube-proxy" --config="$LK_DIR/kube-proxy/config.yaml" --v=1

  for n in $(seq 1 "$LK_NODES"); do wait_node "$n"; done
  waitfor "default ServiceAccount" 60 kube-controller-manager kubectl_ -n default get serviceaccount default
  # The path an in-cluster client takes: Service IP -> kube-proxy's DNAT -> the apiserver on the bridge.
  waitfor "kubernetes Service https://$SVC_API_IP:443 (kube-proxy)" 60 kube-proxy \
    curl -sf --cacert "$P/ca.crt" "https://$SVC_API_IP:443/version"

  # Each node's volumes in a directory of its own: a volume stays on the node it was made on.
  local paths='{"node":"DEFAULT_PATH_FOR_NON_LISTED_NODES","paths":["'$LK_LOCAL_PATH_DIR'"]}'
  for n in $(seq 2 "$LK_NODES"); do
    node_vars "$n"
    paths+=',{"node":"'$NODE_NAME'","paths":["'$NODE_PATH_DIR'"]}'
  done
  sed -e "s|@NODE_PATHS@|$paths|g" -e "s|@HELPER_IMAGE@|$BUSYBOX_IMAGE|g" \
    "$ROOT/hack/local-cluster/local-path-storage.yaml" | kubectl_ apply -f - > /dev/null
  kubectl_ -n local-path-storage get configmap local-path-config -o jsonpath='{.data.config\.json}' \
    > "$LK_DIR/local-path-provisioner/config.json"
  start local-path-provisioner "$TOOLS_BIN/local-path-provisioner" start \
    --config "$LK_DIR/local-path-provisioner/config.json" --kubeconfig "$KC/admin.kubeconfig" \
    --namespace local-path-storage --configmap-name local-path-config \
    --service-account-name local-path-provisioner-service-account --helper-image "$BUSYBOX_IMAGE"
  sleep 1
  alive local-path-provisioner || { tail -n 20 "$L/local-path-provisioner.log" >&2; die "local-path-provisioner exited"; }
  log "default StorageClass local-path (volumes in $LK_LOCAL_PATH_DIR)"

  log "up in $((SECONDS - T0)) s: $LK_NODES node(s); images: $(for i in $LK_IMAGES; do printf '%s ' "$(image_ref "$i")"; done)"
  log "export KUBECONFIG=$KUBECONFIG"
}

# stop NAME...: TERM to each, then KILL whatever still runs after 10 s.
stop() {
  local n p live=()
  for n in "$@"; do
    if alive "$n"; then
      p=$(cat "$PIDS/$n.pid")
      kill -TERM "$p" 2> /dev/null || true
      live+=("$n:$p")
    fi
    rm -f "$PIDS/$n.pid"
  done
  for n in "${live[@]}"; do
    p=${n#*:}
    for _ in $(seq 100); do kill -0 "$p" 2> /dev/null || break; sleep 0.1; done
    kill -0 "$p" 2> /dev/null && kill -KILL "$p" 2> /dev/null || true
  done
  [ ${#live[@]} -eq 0 ] || log "stopped ${live[*]}"
}

down() {
  local purge=
  case "${1:-}" in
    "") ;;
    --purge) purge=1 ;;
    *) die "usage: $0 down [--purge]" ;;
  esac
  [ "$(id -u)" = 0 ] || die "needs root"
  local T0=$SECONDS n nodes
  nodes=$(nodes_of_state)
  stop local-path-provisioner kubelet $(for n in $nodes; do [ "$n" = 1 ] || echo "kubelet-$n"; done)
  # Kill every container task, then remove the containers; shims exit once their task is gone.
  for n in $nodes; do stop_node_containers "$n"; done
  stop containerd $(for n in $nodes; do [ "$n" = 1 ] || echo "containerd-$n"; done) kube-proxy kube-scheduler kube-controller-manager
  stop kube-apiserver
  stop etcd
  # kube-proxy's iptables chains (KUBE-*) in both families; --cleanup leaves KUBE-FIREWALL behind.
  if [ -x "$K8S_BIN/kube-proxy" ] && command -v iptables > /dev/null; then
    "$K8S_BIN/kube-proxy" --cleanup > /dev/null 2>&1 || true
    local ipt
    for ipt in iptables ip6tables; do
      command -v $ipt > /dev/null && $ipt -w -S KUBE-FIREWALL > /dev/null 2>&1 || continue
      while $ipt -w -D INPUT -j KUBE-FIREWALL 2> /dev/null; do :; done
      while $ipt -w -D OUTPUT -j KUBE-FIREWALL 2> /dev/null; do :; done
      $ipt -w -F KUBE-FIREWALL 2> /dev/null && $ipt -w -X KUBE-FIREWALL 2> /dev/null || true
    done
  fi
  # Shims of these containerds (matched on their sockets) that outlived them.
  local m ns
  for n in $nodes; do kill_node_shims "$n"; done
  # Mounts below the state dir (pod volumes, overlay rootfs, shm) and the local-path dir, deepest first.
  for m in $(awk -v a="$LK_DIR/" -v b="$LK_LOCAL_PATH_DIR/" 'index($2, a) == 1 || index($2, b) == 1 {print $2}' /proc/self/mounts | sort -r); do
    umount -l "$m" 2> /dev/null || true
  done
  # Pod network namespaces the CRI made (cni-<uuid>) and their veths.
  for ns in /run/netns/cni-*; do
    [ -e "$ns" ] || continue
    umount -l "$ns" 2> /dev/null || true
    rm -f "$ns"
  done
  if mountpoint -q /run/netns 2> /dev/null && [ -z "$(ls -A /run/netns)" ]; then umount /run/netns 2> /dev/null || true; fi
  for n in $nodes; do clean_node_host "$n"; done
  restore_host_sysctls
  if [ -n "$purge" ]; then
    rm -rf "$LK_DIR" "$LK_LOCAL_PATH_DIR" /tmp/hostpath_pv /run/containerd/runc/k8s.io
    # Paths outside the state dir that the CNI plugins, containerd's shims and kubelet's device
    # plugin manager hard-code; directories are removed only when nothing else is left in them.
    rm -f /var/lib/cni/results/localk8s* /var/lib/kubelet/device-plugins/kubelet.sock 2> /dev/null || true
    rmdir /var/lib/cni/results /var/lib/cni /var/lib/kubelet/device-plugins /var/lib/kubelet 2> /dev/null || true
    rmdir /run/containerd/runc /run/containerd/s /run/containerd/fifo /run/containerd /run/netns 2> /dev/null || true
    log "purged $LK_DIR"
  fi
  log "down in $((SECONDS - T0)) s"
}

status() {
  local c p rc=0
  for c in "${COMPONENTS[@]}" $(node_components "$(nodes_of_state | tail -n 1)"); do
    if alive "$c"; then
      p=$(cat "$PIDS/$c.pid")
      printf '%-24s running  pid %-7s rss %s MiB\n' "$c" "$p" "$(($(awk '/VmRSS/ {print $2}' "/proc/$p/status") / 1024))"
    else
      printf '%-24s stopped\n' "$c"
      rc=3
    fi
  done
  if alive kube-apiserver; then
    find_kubectl
    echo
    kubectl_ get nodes -o wide || true
    echo
    kubectl_ get storageclass || true
    if curl -sf --max-time 3 --cacert "$P/ca.crt" "https://$SVC_API_IP:443/version" > /dev/null; then
      echo "in-cluster API: https://$SVC_API_IP:443 -> https://$API_ADDR:$API_PORT ok"
    else
      echo "in-cluster API: https://$SVC_API_IP:443 not answering"
    fi
  fi
  echo "export KUBECONFIG=$KUBECONFIG"
  return $rc
}

# normalize_ref REF: the name the CRI looks up (flow-ci:dev -> docker.io/library/flow-ci:dev).
normalize_ref() {
  local ref=$1 first=${1%%/*}
  if [ "$first" = "$ref" ]; then
    echo "docker.io/library/$ref"
    return
  fi
  case "$first" in
    *.* | *:* | localhost) echo "$ref" ;;
    *) echo "docker.io/$ref" ;;
  esac
}

load_image() {
  [ $# -eq 2 ] || die "usage: $0 load-image TARBALL_OR_ROOTFS REF"
  local src=$1 ref=$2 full tarball out names n
  img_check_ref "$ref" || exit 2
  alive containerd || die "the cluster is not up (run $0 up)"
  full=$(normalize_ref "$ref")
  if [ -d "$src" ]; then
    tarball=$(image_tar "$ref")
    img_pack "$src" "$ref" "$tarball" || die "packing $src failed"
  elif [ -f "$src" ]; then
    tarball=$src
  else
    die "$src is neither a docker-archive tarball nor a directory"
  fi
  # Every node's containerd, so a pod finds it wherever it is scheduled.
  local node
  for node in $(nodes_of_state); do
    node_vars "$node"
    alive "containerd$NODE_SUFFIX" || continue
    out=$(ctr_at "$NODE_SOCK" images import "$tarball" 2>&1) || { echo "$out" >&2; die "ctr import of $src on node $NODE_NAME failed"; }
    # ctr prints "unpacking NAME (sha256:...)...done" for each image it imported.
    names=$(sed -n -E 's/^unpacking ([^ ]+) \(sha256:.*/\1/p' <<< "$out")
    if ! grep -qxF "$full" <<< "$names"; then
      n=$(grep -c . <<< "$names" || true)
      [ "$n" = 1 ] || die "$src holds $n images (${names//$'\n'/ }); REF must be one of their tags"
      ctr_at "$NODE_SOCK" images tag --force "$names" "$full" > /dev/null
    fi
    log "loaded $full from $src on node $NODE_NAME"
  done
}

case "${1:-}" in
  up)
    shift
    up "$@"
    ;;
  down)
    shift
    down "$@"
    ;;
  status) status ;;
  env) echo "export KUBECONFIG=$KUBECONFIG" ;;
  load-image)
    shift
    load_image "$@"
    ;;
  node-stop | node-start)
    [[ "${2:-}" =~ ^[0-9]+$ ]] && [ -d "$(node_vars "$2" && echo "$NODE_DIR")" ] || die "usage: $0 $1 N (a node of this cluster)"
    node_vars "$2"
    if [ "$1" = node-stop ]; then
      stop "kubelet$NODE_SUFFIX"
    else
      alive "kubelet$NODE_SUFFIX" || start_kubelet "$2"
      find_kubectl
      wait_node "$2"
    fi
    ;;
  *)
    sed -n '2,40p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
