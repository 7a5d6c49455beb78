# flow-ci: a Kubernetes-native CI operator.
SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

IMG ?= flow-ci:dev
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LOCALBIN ?= $(CURDIR)/bin
CONTROLLER_GEN ?= go tool controller-gen
KUSTOMIZE ?= kubectl kustomize
# A short, fixed fuzz smoke in every test run; the long campaign is `make fuzz`.
FUZZ_SMOKE_TIME ?= 2000x
FUZZ_TIME ?= 60s

.PHONY: all
all: build

##@ Development

.PHONY: manifests
manifests: ## Generate the CRD, RBAC and webhook-free manifests from markers.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="{./api/...,./controllers/...}" output:crd:artifacts:config=config/crd/bases

.PHONY: generate
generate: ## Generate deepcopy code.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: fmt
fmt: ## Run gofmt (fails on unformatted files in CI).
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^hack/k8s/')); \
	if [ -n "$$out" ]; then echo "unformatted files:"; echo "$$out"; gofmt -w $$out; [ -z "$$CI" ] || exit 1; fi

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: verify-generated
verify-generated: manifests generate ## Fail when committed generated files are stale.
	@if [ -n "$$(git status --porcelain -- api config)" ]; then \
		echo "generated files are stale; run 'make manifests generate' and commit:"; \
		git status --porcelain -- api config; git --no-pager diff --stat -- api config; exit 1; fi

.PHONY: check-tracked
check-tracked: ## Fail when git tracks a file over 1 MiB or an executable binary (build outputs stay out of git).
	@hack/check-tracked.sh

.PHONY: envtest
envtest: ## Provide kube-apiserver and etcd for envtest under bin/ (prints the path).
	@hack/envtest-assets.sh

.PHONY: gitea
gitea: ## Build the tests' real forge, Gitea, from the Go module proxy into bin/tools (prints the path).
	@hack/gitea.sh

.PHONY: s3server
s3server: ## Build the archive tests' S3-compatible store, versitygw, from the Go module proxy into bin/tools (prints the path).
	@hack/versitygw.sh

.PHONY: test
test: check-tracked verify-generated fmt vet ## Unit, fuzz-smoke and envtest integration tests (with a real Gitea, PostgreSQL and S3 store).
	@assets="$$(hack/envtest-assets.sh)"; gitea="$$(hack/gitea.sh)"; s3="$$(hack/versitygw.sh)"; pg="$$(hack/postgres.sh)"; \
	echo "envtest: $$("$$assets/kube-apiserver" --version), $$("$$assets/etcd" --version | head -n1); forge: Gitea $$("$$gitea/gitea" --version | awk '{print $$3}')"; \
	echo "archive: $$("$$pg/postgres" --version), versitygw $$("$$s3/versitygw" --version | awk '/^Version/ {print $$3}')"; \
	echo "KUBEBUILDER_ASSETS=$$assets FLOWCI_GITEA=$$gitea FLOWCI_S3SERVER=$$s3 FLOWCI_POSTGRES=$$pg go test ./... -count=1 -timeout 20m"; \
	KUBEBUILDER_ASSETS="$$assets" FLOWCI_GITEA="$$gitea" FLOWCI_S3SERVER="$$s3" FLOWCI_POSTGRES="$$pg" go test ./... -count=1 -timeout 20m
	go test ./internal/pipeline -run='^$$' -fuzz=FuzzParse -fuzztime=$(FUZZ_SMOKE_TIME)
	go test ./internal/gitsource -run='^$$' -fuzz=FuzzValidateURL -fuzztime=$(FUZZ_SMOKE_TIME)
	go test ./internal/mask -run='^$$' -fuzz=FuzzWriter -fuzztime=$(FUZZ_SMOKE_TIME)

.PHONY: fuzz
fuzz: ## Longer fuzz campaigns: the pipeline parser, URL validation (CRD rules against the controller's), secret masking of split streams.
	go test ./internal/pipeline -run='^$$' -fuzz=FuzzParse -fuzztime=$(FUZZ_TIME)
	go test ./internal/gitsource -run='^$$' -fuzz=FuzzValidateURL -fuzztime=$(FUZZ_TIME)
	go test ./internal/mask -run='^$$' -fuzz=FuzzWriter -fuzztime=$(FUZZ_TIME)

.PHONY: bench
bench: ## Benchmarks: print numbers, never fail on speed (controller table also in bin/bench/controller.json).
	@# FLOWCI_BENCH_SCALE scales the controller scenarios' run counts (1: 100 and 500 runs;
	@# the controller table took 14 min on 2 cores with the parallel scenario; 0.5 halves it).
	go test ./internal/gitsource -run='^$$' -bench=. -benchmem -benchtime=5x -timeout 15m
	KUBEBUILDER_ASSETS="$$(hack/envtest-assets.sh)" go test ./controllers/archive -run='^$$' -bench=BenchmarkCopy -benchmem -benchtime=10x -count=3
	@# A 500 MiB cache saved and restored by internal/wsfiles against tar with zstd (docs/caches.md).
	KUBEBUILDER_ASSETS="$$(hack/envtest-assets.sh)" go test ./test/bench -run='^$$' -bench=BenchmarkCacheTar -benchtime=1x -timeout 15m -v
	FLOWCI_BENCH_SCALE="$${FLOWCI_BENCH_SCALE:-1}" KUBEBUILDER_ASSETS="$$(hack/envtest-assets.sh)" go test ./test/bench -run='^$$' -bench=BenchmarkController -benchtime=1x -timeout 30m -v

##@ Build

.PHONY: build
build: ## Build the operator binary (manager and clone subcommand) and the steps' secret mask.
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o $(LOCALBIN)/flow-ci ./cmd/manager
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o $(LOCALBIN)/flowci-mask ./cmd/flowci-mask

.PHONY: build-cli
build-cli: ## Build the flowci CLI into bin/ (also as the kubectl plugin kubectl-flowci).
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o $(LOCALBIN)/flowci ./cmd/flowci
	ln -sf flowci $(LOCALBIN)/kubectl-flowci

.PHONY: install-cli
install-cli: ## Install flowci and kubectl-flowci into GOBIN (go install ./cmd/flowci).
	go install -ldflags "-X main.version=$(VERSION)" ./cmd/flowci
	@gobin="$$(go env GOBIN)"; gobin="$${gobin:-$$(go env GOPATH)/bin}"; ln -sf flowci "$$gobin/kubectl-flowci"; \
	echo "installed $$gobin/flowci and $$gobin/kubectl-flowci"

.PHONY: build-installer
build-installer: manifests ## Write dist/install.yaml: CRDs, RBAC, policies and the operator for image $(IMG), in one file.
	@mkdir -p dist; tmp=$$(mktemp -d); cp -r config "$$tmp/"; \
	(cd "$$tmp/config/manager" && sed -i 's|newName: .*|newName: $(word 1,$(subst :, ,$(IMG)))|; s|newTag: .*|newTag: $(or $(word 2,$(subst :, ,$(IMG))),dev)|' kustomization.yaml); \
	$(KUSTOMIZE) "$$tmp/config/default" > dist/install.yaml; rm -rf "$$tmp"; echo "dist/install.yaml (image $(IMG))"

.PHONY: run
run: manifests generate ## Run the operator against the current kubeconfig (clone Jobs use $(IMG)).
	go run ./cmd/manager --clone-image=$(IMG) $(ARGS)

.PHONY: docker-build
docker-build: ## Build the image with Docker, for users who have it.
	docker build -t $(IMG) .

##@ Real cluster (issue: local cluster)

LOCAL_CLUSTER := hack/local-cluster.sh
LOCAL_KUBECONFIG := $(LOCALBIN)/local-cluster/kubeconfig/admin.kubeconfig
E2E_IMG := localhost/flow-ci:e2e
# Nodes of the local cluster (1 or 2); CI uses 2. A running cluster keeps the nodes it has.
NODES ?= 1
# A kubeconfig that answers wins; otherwise the local cluster is brought up and used.
CLUSTER_KUBECONFIG = $(shell if [ -n "$$KUBECONFIG" ] && kubectl version --request-timeout=5s >/dev/null 2>&1; then echo "$$KUBECONFIG"; else echo "$(LOCAL_KUBECONFIG)"; fi)

.PHONY: cluster-up
cluster-up: ## Bring up the local cluster, NODES=1 or 2 (builds what is missing; about 11 min cold).
	$(LOCAL_CLUSTER) up --nodes $(NODES)

.PHONY: cluster-down
cluster-down: ## Stop the local cluster and remove its state (keeps the built binaries).
	$(LOCAL_CLUSTER) down --purge

.PHONY: image-local
image-local: build build-cli ## Pack the operator (with flowci, for the web view, and flowci-mask, for steps with Secrets) as an image without Docker and load it into the local cluster.
	mkdir -p $(LOCALBIN)/images
	IMG_EXTRA_BINARIES="$(LOCALBIN)/flowci=/flowci $(LOCALBIN)/flowci-mask=/flowci-mask" hack/images.sh binary $(E2E_IMG) $(LOCALBIN)/images/flow-ci.tar $(LOCALBIN)/flow-ci '["/flow-ci"]'
	@if $(LOCAL_CLUSTER) status 2>/dev/null | grep '^containerd *running' >/dev/null; then $(LOCAL_CLUSTER) load-image $(LOCALBIN)/images/flow-ci.tar $(E2E_IMG); \
	else echo "image at $(LOCALBIN)/images/flow-ci.tar (the local cluster is not up; load it into yours)"; fi

.PHONY: ensure-cluster
ensure-cluster:
	@kc="$(CLUSTER_KUBECONFIG)"; if [ "$$kc" = "$(LOCAL_KUBECONFIG)" ]; then $(LOCAL_CLUSTER) up --nodes $(NODES); fi

.PHONY: test-e2e
test-e2e: ensure-cluster image-local ## End-to-end tests on a real cluster (KUBECONFIG, else the local one).
	E2E_NODES=$(NODES) KUBECONFIG="$(CLUSTER_KUBECONFIG)" go test -tags e2e ./test/e2e/ -count=1 -v -timeout 40m

.PHONY: bench-cluster
bench-cluster: ensure-cluster image-local ## On a real cluster: step handoffs (flow-ci against Jobs driven by hand), the archive's ingestion (against kubectl logs -f), P6, a Go pipeline with its cache (against its steps as Jobs by hand), and failover (two replicas against one restarted); prints figures, never fails on speed.
	KUBECONFIG="$(CLUSTER_KUBECONFIG)" go test -tags e2e ./test/e2e/ -run '^$$' -bench 'BenchmarkCluster(Handoff|Archive|GoCache|Failover)' -benchtime 1x -count=1 -v -timeout 40m

.PHONY: demo
demo: ensure-cluster image-local ## Build a small Go program with flow-ci on a real cluster, and show it: its log is read back from the run archive once its pods are gone.
	KUBECONFIG="$(CLUSTER_KUBECONFIG)" hack/demo.sh up

.PHONY: demo-down
demo-down: ## Remove the demo (runs, archive, operator); stop the local cluster if the demo used it.
	@kc="$(CLUSTER_KUBECONFIG)"; KUBECONFIG="$$kc" hack/demo.sh down; \
	if [ "$$kc" = "$(LOCAL_KUBECONFIG)" ]; then $(LOCAL_CLUSTER) down --purge; fi

##@ Deployment

.PHONY: install
install: manifests ## Install the CRD into the cluster in the current kubeconfig.
	$(KUSTOMIZE) config/crd | kubectl apply --server-side -f -

.PHONY: uninstall
uninstall: manifests ## Remove the CRD (and with it every PipelineRun).
	$(KUSTOMIZE) config/crd | kubectl delete --ignore-not-found -f -

.PHONY: deploy
deploy: manifests ## Deploy the operator with image $(IMG).
	@tmp=$$(mktemp -d); cp -r config "$$tmp/"; \
	(cd "$$tmp/config/manager" && sed -i 's|newName: .*|newName: $(word 1,$(subst :, ,$(IMG)))|; s|newTag: .*|newTag: $(or $(word 2,$(subst :, ,$(IMG))),dev)|' kustomization.yaml); \
	$(KUSTOMIZE) "$$tmp/config/default" | kubectl apply --server-side -f -; rm -rf "$$tmp"

.PHONY: undeploy
undeploy: ## Remove the operator.
	$(KUSTOMIZE) config/default | kubectl delete --ignore-not-found -f -

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*?##/ { printf "  %-18s %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)
