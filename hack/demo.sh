#!/usr/bin/env bash
# hack/demo.sh up|down: the README's "main job". `up` serves a small Go repository
# (hack/demo/hello) from this machine, deploys the operator and the run archive, starts a
# PipelineRun that vets, tests, builds and runs the program, and watches it with
# `kubectl get fpr -w`. When it succeeded, it deletes the run (its pods go with it) and
# prints the run's whole log with `flowci logs`, read back from the archive. `make demo`
# first brings up the local cluster if no cluster answers and loads the operator image.
# `down` removes what `up` made.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEMO=$ROOT/bin/demo
NS=${DEMO_NAMESPACE:-flow-ci-demo}
GIT_ADDR=${DEMO_GIT_ADDR:-10.88.0.1:8418}
SYS=flow-ci-system
READER=$DEMO/reader.kubeconfig
log() { printf '%s demo: %s\n' "$(date +%T)" "$*"; }

serve_repo() {
  rm -rf "$DEMO/work" "$DEMO/repos" && mkdir -p "$DEMO/work" "$DEMO/repos"
  cp -r "$ROOT/hack/demo/hello/." "$DEMO/work/"
  git -C "$DEMO/work" init -q -b main
  git -C "$DEMO/work" add -A
  git -C "$DEMO/work" -c user.name=demo -c user.email=demo@flowci.dev commit -qm "hello"
  git clone -q --bare "$DEMO/work" "$DEMO/repos/hello.git"
  stop_server
  (cd "$ROOT" && go build -o "$DEMO/gitserver" ./hack/demo-gitserver)
  setsid "$DEMO/gitserver" --root "$DEMO/repos" --addr "$GIT_ADDR" > "$DEMO/gitserver.log" 2>&1 < /dev/null &
  echo $! > "$DEMO/gitserver.pid"
  for _ in $(seq 50); do curl -sf "http://$GIT_ADDR/hello.git/info/refs?service=git-upload-pack" > /dev/null && break; sleep 0.2; done
  log "serving $(git -C "$DEMO/work" rev-parse --short HEAD) at http://$GIT_ADDR/hello.git"
}

stop_server() {
  if [ -f "$DEMO/gitserver.pid" ]; then kill "$(cat "$DEMO/gitserver.pid")" 2> /dev/null || true; rm -f "$DEMO/gitserver.pid"; fi
}

# rollout restarts a Deployment of $SYS and waits for it: the image tag is fixed
# (localhost/flow-ci:e2e), so only a fresh pod runs the image `make demo` just loaded.
rollout() {
  kubectl -n "$SYS" rollout restart "deploy/$1" > /dev/null
  kubectl -n "$SYS" rollout status "deploy/$1" --timeout=180s
}

deploy_operator() {
  log "deploying the operator (test/e2e/config: config/default with the local images)"
  # The git server is on a private address: allow it in the operator's egress policy.
  kubectl kustomize "$ROOT/test/e2e/config" | sed "s|E2E_GIT_HOST|${GIT_ADDR%:*}|" |
    kubectl apply --server-side --force-conflicts -f - > /dev/null
  kubectl wait --for=condition=Established crd/pipelineruns.ci.flowci.dev --timeout=60s > /dev/null
  rollout flow-ci-controller-manager
}

# deploy_archive deploys the run archive as the e2e does. It must run before the run
# starts: it follows each step's log as it is written, and holds a deleted run (its
# finalizer) until the run's logs and record are stored.
deploy_archive() {
  if kubectl -n "$SYS" get deploy flow-ci-archive > /dev/null 2>&1 && ! demo_archive; then
    log "using the run archive already deployed (make demo-down leaves it and its records)"
    return
  fi
  log "deploying the run archive (test/e2e/archive-config: config/archive, embedded store, the local image)"
  kubectl kustomize "$ROOT/test/e2e/archive-config" | kubectl apply --server-side --force-conflicts -f - > /dev/null
  kubectl -n "$SYS" annotate deploy flow-ci-archive flowci.dev/demo=true --overwrite > /dev/null
  rollout flow-ci-archive
}

# demo_archive says the archive in $SYS is the one the demo deployed (annotated so): only
# that one does demo-down remove, with its volume of records.
demo_archive() {
  [ "$(kubectl -n "$SYS" get deploy flow-ci-archive -o jsonpath='{.metadata.annotations.flowci\.dev/demo}' 2> /dev/null)" = true ]
}

start_run() {
  kubectl -n "$NS" create -o name -f - << YAML
apiVersion: ci.flowci.dev/v1alpha1
kind: PipelineRun
metadata:
  generateName: hello-
spec:
  repoURL: http://$GIT_ADDR/hello.git
  branch: main
YAML
}

# watch_run shows `kubectl get fpr -w` until run $1 ends, and sets phase. Not run in
# $(...): the watch would print into the capture instead of the terminal.
watch_run() {
  log "created PipelineRun $1; watching (kubectl -n $NS get fpr -w)"
  kubectl -n "$NS" get fpr -w &
  watch=$!
  trap 'kill $watch 2> /dev/null || true' EXIT
  phase=""
  for _ in $(seq 900); do
    phase=$(kubectl -n "$NS" get fpr "$1" -o jsonpath='{.status.phase}')
    case "$phase" in Succeeded | Failed | Cancelled) break ;; esac
    sleep 1
  done
  sleep 1
  kill $watch 2> /dev/null || true
  echo
}

# step_logs prints each step's log from its Job's pod, while the run still has them.
step_logs() {
  for job in $(kubectl -n "$NS" get fpr "$1" -o jsonpath='{range .status.steps[*]}{.jobName}{"\n"}{end}'); do
    echo "---- kubectl -n $NS logs job/$job"
    kubectl -n "$NS" logs "job/$job" || true
  done
}

run_pods() { kubectl -n "$NS" get pods -l "flowci.dev/pipelinerun-uid=$1" -o name; }

# pods_gone waits for the garbage collector to delete the pods of the run with UID $1,
# which it does once the run itself is gone.
pods_gone() {
  for _ in $(seq 120); do
    [ -z "$(run_pods "$1")" ] && return 0
    sleep 1
  done
  log "the run's pods are still there after 2 minutes" >&2
  return 1
}

# make_reader writes $READER, a kubeconfig with a token of hack/demo/reader.yaml's
# ServiceAccount: the archive authenticates readers by bearer token only (TokenReview),
# and the local cluster's admin kubeconfig has a client certificate instead.
make_reader() {
  sed "s|DEMO_NAMESPACE|$NS|" "$ROOT/hack/demo/reader.yaml" | kubectl -n "$NS" apply -f - > /dev/null
  local server ca token
  server=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')
  ca=$(kubectl config view --minify --flatten -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
  token=$(kubectl -n "$NS" create token demo-reader)
  (umask 077 && cat > "$READER") << KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: demo
  cluster: {server: "$server", certificate-authority-data: "$ca"}
users:
- name: demo-reader
  user: {token: "$token"}
contexts:
- name: demo-reader
  context: {cluster: demo, user: demo-reader, namespace: "$NS"}
current-context: demo-reader
KUBECONFIG
}

# archive_url is the archive's Service by its cluster IP, which the cluster routes
# from this machine and the archive's certificate names (no cluster DNS needed).
archive_url() { echo "https://$(kubectl -n "$SYS" get svc flow-ci-archive -o jsonpath='{.spec.clusterIP}')"; }

# from_archive deletes run $1 and prints its whole log, read back from the archive by
# `flowci logs` as the demo reader. The delete returns once the archive let the run go,
# that is once its logs and record are stored.
from_archive() {
  local uid pods url
  uid=$(kubectl -n "$NS" get fpr "$1" -o jsonpath='{.metadata.uid}')
  pods=$(run_pods "$uid" | wc -l)
  log "deleting run $1 and its $pods pods (kubectl -n $NS delete fpr $1)"
  kubectl -n "$NS" delete fpr "$1" --timeout=6m > /dev/null
  pods_gone "$uid"
  make_reader
  url=$(archive_url)
  log "run $1 and its pods are gone from the cluster; its whole log, from the run archive:"
  echo "---- KUBECONFIG=$READER $ROOT/bin/flowci logs $1 -n $NS --archive-url $url"
  KUBECONFIG=$READER "$ROOT/bin/flowci" logs "$1" -n "$NS" --archive-url "$url"
  echo
  log "the web view of it: KUBECONFIG=$READER $ROOT/bin/flowci ui -n $NS --archive-url $url, then open http://127.0.0.1:8080/runs/$NS/$1"
}

up() {
  mkdir -p "$DEMO"
  serve_repo
  deploy_operator
  deploy_archive
  kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f - > /dev/null
  kubectl label namespace "$NS" pod-security.kubernetes.io/enforce=restricted --overwrite > /dev/null
  name=$(start_run)
  name=${name#*/}
  watch_run "$name"
  kubectl -n "$NS" get fpr "$name" -o wide
  if [ "$phase" != Succeeded ]; then
    step_logs "$name"
    log "the web view of this run: $ROOT/bin/flowci ui -n $NS, then open http://127.0.0.1:8080/runs/$NS/$name"
    log "run $name: ${phase:-not finished} (make demo-down cleans up)"
    return 1
  fi
  from_archive "$name"
  log "run $name: $phase (make demo-down cleans up)"
}

# remove_archive deletes the archive (kubectl waits for its volume, so for its pod),
# then takes its finalizer off every run left in the cluster, as its uninstall does
# (docs/archive.md): else deleting the operator's CRD next would wait for those runs.
# Run from this machine once the archive is gone, so that it cannot add it back.
remove_archive() {
  demo_archive || return 0
  kubectl kustomize "$ROOT/test/e2e/archive-config" | kubectl delete --ignore-not-found --timeout=3m -f - > /dev/null 2>&1 || true
  if [ -x "$ROOT/bin/flow-ci" ]; then
    "$ROOT/bin/flow-ci" archive --release-all > /dev/null 2>&1 || true
  else
    (cd "$ROOT" && go run ./cmd/manager archive --release-all) > /dev/null 2>&1 || true
  fi
}

down() {
  stop_server
  # First, while the archive runs: it lets each run go once its logs are stored.
  kubectl -n "$NS" delete fpr --all --timeout=2m > /dev/null 2>&1 || true
  remove_archive
  kubectl delete namespace "$NS" --ignore-not-found --wait=false > /dev/null 2>&1 || true
  kubectl kustomize "$ROOT/test/e2e/config" | kubectl delete --ignore-not-found -f - > /dev/null 2>&1 || true
  rm -rf "$DEMO"
  log "demo removed"
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
