#!/usr/bin/env bash
# hack/demo.sh up|down: the README's "main job". `up` serves a small Go repository
# (hack/demo/hello) from this machine, deploys the operator, starts a PipelineRun that
# vets, tests, builds and runs the program, watches it with `kubectl get fpr -w` and
# prints each step's log. `make demo` first brings up the local cluster if no cluster
# answers and loads the operator image. `down` removes what `up` made.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEMO=$ROOT/bin/demo
NS=${DEMO_NAMESPACE:-flow-ci-demo}
GIT_ADDR=${DEMO_GIT_ADDR:-10.88.0.1:8418}
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

up() {
  mkdir -p "$DEMO"
  serve_repo
  log "deploying the operator (test/e2e/config: config/default with the local images)"
  # The git server is on a private address: allow it in the operator's egress policy.
  kubectl kustomize "$ROOT/test/e2e/config" | sed "s|E2E_GIT_HOST|${GIT_ADDR%:*}|" |
    kubectl apply --server-side --force-conflicts -f - > /dev/null
  kubectl wait --for=condition=Established crd/pipelineruns.ci.flowci.dev --timeout=60s > /dev/null
  kubectl -n flow-ci-system rollout status deploy/flow-ci-controller-manager --timeout=180s
  kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f - > /dev/null
  kubectl label namespace "$NS" pod-security.kubernetes.io/enforce=restricted --overwrite > /dev/null
  name=$(kubectl -n "$NS" create -o name -f - << YAML
apiVersion: ci.flowci.dev/v1alpha1
kind: PipelineRun
metadata:
  generateName: hello-
spec:
  repoURL: http://$GIT_ADDR/hello.git
  branch: main
YAML
  )
  name=${name#*/}
  log "created PipelineRun $name; watching (kubectl -n $NS get fpr -w)"
  kubectl -n "$NS" get fpr -w &
  watch=$!
  trap 'kill $watch 2> /dev/null || true' EXIT
  phase=""
  for _ in $(seq 900); do
    phase=$(kubectl -n "$NS" get fpr "$name" -o jsonpath='{.status.phase}')
    case "$phase" in Succeeded | Failed | Cancelled) break ;; esac
    sleep 1
  done
  sleep 1
  kill $watch 2> /dev/null || true
  echo
  for job in $(kubectl -n "$NS" get fpr "$name" -o jsonpath='{range .status.steps[*]}{.jobName}{"\n"}{end}'); do
    echo "---- kubectl -n $NS logs job/$job"
    kubectl -n "$NS" logs "job/$job" || true
  done
  echo
  kubectl -n "$NS" get fpr "$name" -o wide
  log "the web view of this run: $ROOT/bin/flowci ui -n $NS, then open http://127.0.0.1:8080/runs/$NS/$name"
  log "run $name: $phase (make demo-down cleans up)"
  [ "$phase" = Succeeded ]
}

down() {
  stop_server
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
