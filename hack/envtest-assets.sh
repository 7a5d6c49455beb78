#!/usr/bin/env bash
# Prints a directory holding kube-apiserver and etcd for controller-runtime's envtest.
# Order: $KUBEBUILDER_ASSETS, then a cached build under bin/, then setup-envtest's download,
# then a build from source (kube-apiserver from the pinned module in hack/k8s, etcd from
# Debian's etcd-server or go.etcd.io). Progress goes to stderr; stdout is only the path.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
K8S_VERSION=${K8S_VERSION:-1.37.2}
ETCD_MODULE_VERSION=${ETCD_MODULE_VERSION:-v3.6.16}
SETUP_ENVTEST_VERSION=${SETUP_ENVTEST_VERSION:-v0.25.1}
log() { echo "envtest-assets: $*" >&2; }
complete() { [ -x "$1/kube-apiserver" ] && [ -x "$1/etcd" ]; }

if [ -n "${KUBEBUILDER_ASSETS:-}" ]; then
  complete "$KUBEBUILDER_ASSETS" || { log "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS lacks kube-apiserver or etcd"; exit 1; }
  echo "$KUBEBUILDER_ASSETS"; exit 0
fi

# The cache key is the build module's go.sum, so a version bump rebuilds.
KEY=$(cat "$ROOT/hack/k8s/go.mod" "$ROOT/hack/k8s/go.sum" | sha256sum | cut -c1-12)
DIR=$ROOT/bin/k8s/$K8S_VERSION-$KEY
if complete "$DIR"; then echo "$DIR"; exit 0; fi
mkdir -p "$DIR"

# 2. The normal download. It fails fast where the release bucket is unreachable.
SETUP_DIR=$ROOT/bin/setup-envtest
if [ -z "${FLOWCI_SKIP_DOWNLOAD:-}" ]; then
  log "trying setup-envtest download of $K8S_VERSION"
  if got=$(cd "$ROOT" && timeout 120 go run sigs.k8s.io/controller-runtime/tools/setup-envtest@$SETUP_ENVTEST_VERSION \
      use "$K8S_VERSION" --bin-dir "$SETUP_DIR" -p path 2> "$ROOT/bin/setup-envtest.log") && complete "$got"; then
    ln -sf "$got/kube-apiserver" "$DIR/kube-apiserver"
    ln -sf "$got/etcd" "$DIR/etcd"
    [ -x "$got/kubectl" ] && ln -sf "$got/kubectl" "$DIR/kubectl"
    log "downloaded to $got"; echo "$DIR"; exit 0
  fi
  log "download unavailable ($(tail -n1 "$ROOT/bin/setup-envtest.log" 2> /dev/null | cut -c1-120)); building from source"
fi

# 3a. kube-apiserver from source, through the Go module proxy.
if [ ! -x "$DIR/kube-apiserver" ]; then
  log "building kube-apiserver v$K8S_VERSION from source (about 6 min cold on 2 cores)..."
  start=$SECONDS
  ldflags="-s -w -X k8s.io/component-base/version.gitVersion=v$K8S_VERSION -X k8s.io/client-go/pkg/version.gitVersion=v$K8S_VERSION"
  (cd "$ROOT/hack/k8s" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" \
    -o "$DIR/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver) >&2
  mv "$DIR/kube-apiserver.tmp" "$DIR/kube-apiserver"
  log "kube-apiserver built in $((SECONDS - start)) s"
fi

# 3b. etcd: Debian's etcd-server (3.4 works with kube-apiserver 1.37), else from source.
if [ ! -x "$DIR/etcd" ]; then
  if ! command -v etcd > /dev/null && [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    log "installing Debian etcd-server"
    { apt-get install -y --no-install-recommends etcd-server || { apt-get update && apt-get install -y --no-install-recommends etcd-server; }; } > "$ROOT/bin/apt-etcd.log" 2>&1 \
      || log "apt-get install etcd-server failed (see bin/apt-etcd.log)"
  fi
  if command -v etcd > /dev/null; then
    ln -sf "$(command -v etcd)" "$DIR/etcd"
  else
    log "building etcd $ETCD_MODULE_VERSION from source..."
    tmp=$(mktemp -d)
    printf 'package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n' > "$tmp/main.go"
    (cd "$tmp" && go mod init etcd-envtest > /dev/null 2>&1 && go get "go.etcd.io/etcd/server/v3@$ETCD_MODULE_VERSION" >&2 \
      && CGO_ENABLED=0 go build -o "$DIR/etcd" .) >&2
    rm -rf "$tmp"
  fi
fi

complete "$DIR" || { log "could not provide envtest binaries in $DIR"; exit 1; }
log "kube-apiserver $("$DIR/kube-apiserver" --version 2> /dev/null | awk '{print $2}'), etcd $("$DIR/etcd" --version 2> /dev/null | head -n1 | awk '{print $3}')"
echo "$DIR"
