#!/usr/bin/env bash
# hack/local-cluster/smoke.sh: proves a cluster from hack/local-cluster.sh can run flow-ci's workloads.
# Everything runs in a namespace that enforces the restricted Pod Security profile, as uid 65532,
# with seccomp RuntimeDefault and no capabilities:
#   1. a PVC on the default StorageClass, written by one Job and read by the next;
#   2. the API through the KUBERNETES_SERVICE_HOST/PORT that kubelet injects, with the service
#      account's token and CA, from a static binary packed by `hack/images.sh binary` and loaded
#      with `load-image` (what the operator's Deployment does);
#   3. an image loaded from a root filesystem directory under a short name (NAME:TAG);
#   4. the Go image: go version, vet, test and build of a stdlib-only program, offline, with HOME
#      and GOCACHE on the PVC;
#   and `kubectl logs job/...` for each Job.
# Usage: hack/local-cluster/smoke.sh   (KEEP=1 keeps the namespace for a look around)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
eval "$("$ROOT/hack/local-cluster.sh" env)"
NS=${SMOKE_NS:-lk-smoke}
BUSYBOX=${BUSYBOX_IMAGE:-localhost/busybox:local}
GO=${GO_IMAGE:-localhost/go:local}
passed=0
failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

log() { printf '%s smoke: %s\n' "$(date +%T)" "$*"; }
ok() {
  passed=$((passed + 1))
  log "ok   $*"
}
fail() {
  failed=$((failed + 1))
  log "FAIL $*"
}

# job NAME IMAGE SCRIPT [EXTRA-ENV-YAML]: a restricted Job on the PVC "work" that runs `sh -c SCRIPT`
# (SCRIPT "-": the image's own entrypoint).
job() {
  local name=$1 image=$2 script=$3 env=${4:-} cmd=
  if [ "$script" != - ]; then
    cmd=$(printf '        command: ["/bin/sh", "-c"]\n        args:\n        - |\n'; sed 's/^/          /' <<< "$script")
  fi
  kubectl -n "$NS" apply -f - > /dev/null << EOF
apiVersion: batch/v1
kind: Job
metadata: {name: $name}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      dnsPolicy: Default
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        runAsGroup: 65532
        seccompProfile: {type: RuntimeDefault}
      volumes:
      - {name: work, persistentVolumeClaim: {claimName: work}}
      - {name: src, configMap: {name: hello-src}}
      containers:
      - name: main
        image: $image
        imagePullPolicy: IfNotPresent
$cmd
        env: [{name: HOME, value: /work/home}$env]
        securityContext:
          allowPrivilegeEscalation: false
          capabilities: {drop: ["ALL"]}
        volumeMounts:
        - {name: work, mountPath: /work}
        - {name: src, mountPath: /src}
EOF
}

# complete NAME TIMEOUT: waits for the Job to complete; prints its logs either way.
complete() {
  local name=$1 t=$2 start=$SECONDS
  if kubectl -n "$NS" wait --for=condition=Complete "job/$name" --timeout="${t}s" > /dev/null 2>&1; then
    ok "job/$name Complete in $((SECONDS - start)) s"
    kubectl -n "$NS" logs "job/$name" | sed 's/^/    | /'
    return 0
  fi
  fail "job/$name not Complete after $((SECONDS - start)) s"
  kubectl -n "$NS" describe "job/$name" | tail -n 15 | sed 's/^/    | /'
  kubectl -n "$NS" logs "job/$name" 2>&1 | tail -n 30 | sed 's/^/    | /' || true
  return 1
}

T0=$SECONDS
kubectl delete namespace "$NS" --ignore-not-found --wait=true > /dev/null
kubectl apply -f - > /dev/null << EOF
apiVersion: v1
kind: Namespace
metadata:
  name: $NS
  labels:
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/warn: restricted
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: work, namespace: $NS}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: hello-src, namespace: $NS}
data:
  go.mod: |
    module example.com/hello

    go 1.24
  main.go: |
    package main

    import "fmt"

    func greeting(who string) string { return "hello, " + who }

    func main() { fmt.Println(greeting("flow-ci")) }
  main_test.go: |
    package main

    import "testing"

    func TestGreeting(t *testing.T) {
    	if got := greeting("x"); got != "hello, x" {
    		t.Fatalf("greeting = %q", got)
    	}
    }
EOF
kubectl -n "$NS" wait --for=jsonpath='{.metadata.name}'=default serviceaccount/default --timeout=30s > /dev/null

# 1. A PVC written by one Job and read by the next.
job write "$BUSYBOX" 'set -e; id; echo "written by $(id -u)" > /work/msg; mkdir -p /work/home; ls -ld /work /work/msg'
complete write 60 || true
job read "$BUSYBOX" 'set -e; cat /work/msg; test "$(cat /work/msg)" = "written by 65532"'
complete read 60 || true
pv=$(kubectl -n "$NS" get pvc work -o jsonpath='{.spec.volumeName}')
if [ -n "$pv" ]; then
  ok "pvc/work bound to $pv ($(kubectl get pv "$pv" -o jsonpath='{.spec.storageClassName}'))"
else
  fail "pvc/work not bound"
fi

# 2. The API through the kubernetes Service, as client-go's rest.InClusterConfig reaches it.
# (busybox wget cannot show this: its built-in TLS sends no signature_algorithms extension, and
# Go 1.26 servers refuse such TLS 1.2 clients with a handshake failure.)
mkdir -p "$tmp/apicheck"
printf 'module apicheck\n\ngo 1.24\n' > "$tmp/apicheck/go.mod"
cat > "$tmp/apicheck/main.go" << 'GO'
// apicheck does what client-go's rest.InClusterConfig does (KUBERNETES_SERVICE_HOST/PORT, the
// service account token and CA), then asks the API server for its version and who it is.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
)

const sa = "/var/run/secrets/kubernetes.io/serviceaccount/"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "apicheck:", err)
		os.Exit(1)
	}
}

func run() error {
	base := "https://" + net.JoinHostPort(os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT"))
	ca, err := os.ReadFile(sa + "ca.crt")
	if err != nil {
		return err
	}
	token, err := os.ReadFile(sa + "token")
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return fmt.Errorf("no certificate in %sca.crt", sa)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	fmt.Println("api:", base, "(server certificate verified against the service account CA)")
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/version", ""},
		{"POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", `{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}`},
	} {
		req, err := http.NewRequest(r.method, base+r.path, strings.NewReader(r.body))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%s %s: %s %s\n", r.method, r.path, resp.Status, strings.Join(strings.Fields(string(b)), ""))
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("%s %s: %s", r.method, r.path, resp.Status)
		}
	}
	return nil
}
GO
(cd "$tmp/apicheck" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -ldflags '-s -w' -o apicheck .)
"$ROOT/hack/images.sh" binary localhost/lk-apicheck:smoke "$tmp/apicheck.tar" "$tmp/apicheck/apicheck" '["/apicheck"]'
"$ROOT/hack/local-cluster.sh" load-image "$tmp/apicheck.tar" localhost/lk-apicheck:smoke > /dev/null
job api localhost/lk-apicheck:smoke -
if complete api 60 && kubectl -n "$NS" logs job/api | grep -q "\"username\":\"system:serviceaccount:$NS:default\""; then
  ok "in-cluster API through KUBERNETES_SERVICE_HOST as system:serviceaccount:$NS:default"
else
  fail "in-cluster API"
fi

# 3. A root filesystem directory loaded under a short name, which the CRI normalizes.
mkdir -p "$tmp/rootfs/bin"
cp /usr/bin/busybox "$tmp/rootfs/bin/busybox"
ln -s busybox "$tmp/rootfs/bin/sh"
"$ROOT/hack/local-cluster.sh" load-image "$tmp/rootfs" lk-smoke-rootfs:1 > /dev/null
job rootfs lk-smoke-rootfs:1 'echo "rootfs image runs as uid $(/bin/busybox id -u)"'
complete rootfs 60 || true

# 4. Go, offline, as 65532, with HOME and GOCACHE on the PVC.
job go "$GO" 'set -e
go version
go env GOROOT GOCACHE GOPROXY GOTOOLCHAIN CGO_ENABLED
mkdir -p /work/hello && cp /src/go.mod /src/main.go /src/main_test.go /work/hello/ && cd /work/hello
go vet ./...
go test ./...
go build -o /work/hello/hello .
/work/hello/hello' ', {name: GOCACHE, value: /work/home/go-build}'
if complete go 600 && kubectl -n "$NS" logs job/go | grep -qx 'hello, flow-ci'; then
  ok "go vet/test/build in the Go image"
else
  fail "go image"
fi

if [ -z "${KEEP:-}" ]; then
  if kubectl delete namespace "$NS" --wait=true --timeout=120s > /dev/null; then
    ok "namespace $NS deleted"
  else
    fail "namespace $NS deletion"
  fi
fi
log "done in $((SECONDS - T0)) s"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
