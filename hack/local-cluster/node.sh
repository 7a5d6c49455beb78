# hack/local-cluster/node.sh: one node of the local cluster, sourced by hack/local-cluster.sh.
# Node 1 is 127.0.0.1 with its state in $LK_DIR (containerd/, cni/, kubelet/), as before there
# was a second; node N > 1 is 127.0.0.N with its own containerd (socket, root, state, runc
# root), CNI network and bridge (lk8s<N-1>, pods in 10.88.<N-1>.0/24), kubelet (root dir,
# pod logs, cgroup root /lk8s-node<N>, serving on 127.0.0.N:10250) and local-path directory.
# All nodes share this machine's network namespace, so its routing table joins their bridges:
# a pod on one node reaches pods on the other, the apiserver on 10.88.0.1 and, through the one
# kube-proxy's iptables rules (which see every bridge's traffic), every Service.

# node_vars N: sets the NODE_* variables of node N.
node_vars() {
  local n=$1
  NODE_N=$n
  NODE_NAME=127.0.0.$n
  if [ "$n" = 1 ]; then
    NODE_DIR=$LK_DIR NODE_SUFFIX= NODE_PATH_DIR=$LK_LOCAL_PATH_DIR NODE_NET=localk8s
  else
    NODE_DIR=$LK_DIR/node$n NODE_SUFFIX=-$n NODE_PATH_DIR=$LK_LOCAL_PATH_DIR/node$n NODE_NET=localk8s$n
  fi
  NODE_SOCK=$NODE_DIR/containerd/containerd.sock
  NODE_BRIDGE=${BRIDGE%0}$((n - 1))
  local third=${PODNET#*.*.}
  third=${third%.*}
  NODE_SUBNET=${PODNET%.*.*}.$((third + n - 1)).0/${POD_SUBNET#*/}
  NODE_GW=${NODE_SUBNET%.*}.1
  [ "$n" = 1 ] && NODE_GW=$API_ADDR
  NODE_CGROUP_ROOT=/
  [ "$n" = 1 ] || NODE_CGROUP_ROOT=/lk8s-node$n
}

# nodes_of_state: the nodes the state dir has (1, and each nodeN/ beside it).
nodes_of_state() {
  local d
  echo 1
  for d in "$LK_DIR"/node[0-9]*; do
    if [ -d "$d" ]; then echo "${d##*/node}"; fi
  done
}

ctr_at() {
  local sock=$1
  shift
  ctr -a "$sock" -n k8s.io "$@"
}

# gen_node_pki N: node N's kubelet client (system:node:127.0.0.N) and serving certificates and
# its kubeconfig, signed by the cluster's CA; kept when they exist.
gen_node_pki() {
  node_vars "$1"
  local who=kubelet$NODE_SUFFIX
  [ -f "$KC/$who.kubeconfig" ] && return 0
  (
    cd "$P"
    pki_sign "$who" "system:node:$NODE_NAME" system:nodes "" clientAuth
    pki_sign "kubelet-serving$NODE_SUFFIX" "$NODE_NAME" "" "DNS:localhost,IP:$NODE_NAME" serverAuth
  )
  write_kubeconfig "$who"
}

write_node_configs() {
  node_vars "$1"
  local d=$NODE_DIR
  mkdir -p "$d/containerd" "$d/cni/net.d" "$d/kubelet/root" "$d/kubelet/pod-logs" "$NODE_PATH_DIR"
  cat > "$d/containerd/config.toml" << EOF
version = 2
root = "$d/containerd/root"
state = "$d/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]
[grpc]
  address = "$NODE_SOCK"
[plugins."io.containerd.internal.v1.opt"]
  path = "$d/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # This VM drops CAP_SYS_RESOURCE: runc cannot lower oom_score_adj (the sandbox asks for -998),
  # and every sandbox would fail with "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        SystemdCgroup = false
        Root = "/run/containerd/runc$NODE_SUFFIX"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$d/cni/net.d"
EOF
  cat > "$d/cni/net.d/10-$NODE_NET.conflist" << EOF
{
  "cniVersion": "0.4.0",
  "name": "$NODE_NET",
  "plugins": [
    {"type": "bridge", "bridge": "$NODE_BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$d/cni/ipam",
              "ranges": [[{"subnet": "$NODE_SUBNET", "gateway": "$NODE_GW"}]], "routes": [{"dst": "0.0.0.0/0"}]}}
  ]
}
EOF
  cat > "$d/kubelet/config.yaml" << EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_NAME
port: 10250
healthzBindAddress: $NODE_NAME
healthzPort: 10248
readOnlyPort: 0
failCgroupV1: false
failSwapOn: false
cgroupDriver: cgroupfs
cgroupRoot: $NODE_CGROUP_ROOT
containerRuntimeEndpoint: unix://$NODE_SOCK
imageServiceEndpoint: unix://$NODE_SOCK
tlsCertFile: $P/kubelet-serving$NODE_SUFFIX.crt
tlsPrivateKeyFile: $P/kubelet-serving$NODE_SUFFIX.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $P/ca.crt}
authorization: {mode: Webhook}
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
podLogsDir: $d/kubelet/pod-logs
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
makeIPTablesUtilChains: false
rotateCertificates: false
syncFrequency: 10s
nodeStatusUpdateFrequency: 10s
# Container logs rotate at 1 MiB, checked every 3 s (the least), five files kept: a step that
# prints more loses its start from the kubelet, which the archive's e2e needs to show
# the archive does not.
containerLogMaxSize: 1Mi
containerLogMaxFiles: 5
containerLogMonitorInterval: 3s
EOF
}

import_node_images() {
  node_vars "$1"
  local i ref have
  have=$(ctr_at "$NODE_SOCK" images ls -q)
  for i in $LK_IMAGES; do
    ref=$(image_ref "$i")
    grep -qxF "$ref" <<< "$have" && continue
    [ -s "$(image_tar "$ref")" ] || continue # not built (build_images said why)
    ctr_at "$NODE_SOCK" images import "$(image_tar "$ref")" > /dev/null || die "ctr import of $ref on node $NODE_NAME failed"
    log "image $ref imported on node $NODE_NAME"
  done
}

start_node_runtime() {
  node_vars "$1"
  start "containerd$NODE_SUFFIX" containerd --config "$NODE_DIR/containerd/config.toml"
  waitfor "containerd of node $NODE_NAME" 30 "containerd$NODE_SUFFIX" ctr_at "$NODE_SOCK" version
  import_node_images "$1"
}

start_kubelet() {
  node_vars "$1"
  # A cgroup root of its own must exist in every hierarchy before kubelet starts; a new
  # cpuset gets its parent's CPUs and memory nodes, or no task could join it.
  if [ "$NODE_CGROUP_ROOT" != / ]; then
    [ -d /sys/fs/cgroup/cpuset ] || die "a second node needs cgroup v1 (this machine's); found no /sys/fs/cgroup/cpuset"
    local h
    for h in /sys/fs/cgroup/*/; do
      [ "${h%/}" = /sys/fs/cgroup/unified ] && continue
      mkdir -p "$h${NODE_CGROUP_ROOT#/}"
    done
    cat /sys/fs/cgroup/cpuset/cpuset.cpus > "/sys/fs/cgroup/cpuset$NODE_CGROUP_ROOT/cpuset.cpus"
    cat /sys/fs/cgroup/cpuset/cpuset.mems > "/sys/fs/cgroup/cpuset$NODE_CGROUP_ROOT/cpuset.mems"
  fi
  start "kubelet$NODE_SUFFIX" "$K8S_BIN/kubelet" --config="$NODE_DIR/kubelet/config.yaml" \
    --kubeconfig="$KC/kubelet$NODE_SUFFIX.kubeconfig" --hostname-override="$NODE_NAME" --root-dir="$NODE_DIR/kubelet/root" --v=1
}

wait_node() {
  node_vars "$1"
  waitfor "node $NODE_NAME registered" 120 "kubelet$NODE_SUFFIX" kubectl_ get node "$NODE_NAME"
  waitfor "node $NODE_NAME Ready" 180 "kubelet$NODE_SUFFIX" kubectl_ wait --for=condition=Ready "node/$NODE_NAME" --timeout=2s
}

# stop_node_containers N: kills every container task of node N's containerd and removes the
# containers, so its shims exit.
stop_node_containers() {
  node_vars "$1"
  local t c
  if alive "containerd$NODE_SUFFIX"; then
    for t in $(ctr_at "$NODE_SOCK" tasks ls -q 2> /dev/null); do ctr_at "$NODE_SOCK" tasks kill -s SIGKILL "$t" > /dev/null 2>&1 || true; done
    sleep 1
    for t in $(ctr_at "$NODE_SOCK" tasks ls -q 2> /dev/null); do ctr_at "$NODE_SOCK" tasks delete -f "$t" > /dev/null 2>&1 || true; done
    for c in $(ctr_at "$NODE_SOCK" containers ls -q 2> /dev/null); do ctr_at "$NODE_SOCK" containers delete "$c" > /dev/null 2>&1 || true; done
  fi
}

kill_node_shims() {
  node_vars "$1"
  local d cmd
  for d in /proc/[0-9]*; do
    cmd=$(tr '\0' ' ' 2> /dev/null < "$d/cmdline") || continue
    case "$cmd" in
      *containerd-shim*"-address $NODE_SOCK "*)
        kill -KILL "${d#/proc/}" 2> /dev/null || true
        log "killed shim ${d#/proc/}"
        ;;
    esac
  done
}

# clean_node_host N: what node N leaves on the machine outside the state dir: its bridge and
# its empty kubelet cgroups (cgroup v1, cgroupfs driver).
clean_node_host() {
  node_vars "$1"
  local cg base=kubepods
  [ "$NODE_CGROUP_ROOT" = / ] || base=${NODE_CGROUP_ROOT#/}
  ip link show "$NODE_BRIDGE" > /dev/null 2>&1 && ip link delete "$NODE_BRIDGE"
  for cg in /sys/fs/cgroup/*/"$base" /sys/fs/cgroup/"$base"; do
    [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} \; 2> /dev/null || true
  done
  [ "$1" = 1 ] || { rm -rf "/run/containerd/runc$NODE_SUFFIX/k8s.io"; rmdir "/run/containerd/runc$NODE_SUFFIX" 2> /dev/null || true; }
}
