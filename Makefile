# flow-ci: a Kubernetes-native CI operator.
SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

IMG ?= flow-ci:dev
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
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="./..." output:crd:artifacts:config=config/crd/bases

.PHONY: generate
generate: ## Generate deepcopy code.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./..."

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

.PHONY: envtest
envtest: ## Provide kube-apiserver and etcd for envtest under bin/ (prints the path).
	@hack/envtest-assets.sh

.PHONY: test
test: verify-generated fmt vet ## Unit, fuzz-smoke and envtest integration tests.
	@assets="$$(hack/envtest-assets.sh)"; \
	echo "envtest: $$("$$assets/kube-apiserver" --version), $$("$$assets/etcd" --version | head -n1)"; \
	echo "KUBEBUILDER_ASSETS=$$assets go test ./... -count=1 -timeout 20m"; \
	KUBEBUILDER_ASSETS="$$assets" go test ./... -count=1 -timeout 20m
	go test ./internal/pipeline -run='^$$' -fuzz=FuzzParse -fuzztime=$(FUZZ_SMOKE_TIME)

.PHONY: fuzz
fuzz: ## A longer fuzz campaign of the pipeline parser.
	go test ./internal/pipeline -run='^$$' -fuzz=FuzzParse -fuzztime=$(FUZZ_TIME)

.PHONY: bench
bench: ## Benchmarks: print numbers, never fail on speed.
	KUBEBUILDER_ASSETS="$$(hack/envtest-assets.sh)" go test ./... -run='^$$' -bench=. -benchmem -benchtime=5x -timeout 30m

##@ Build

.PHONY: build
build: ## Build the operator binary (manager and clone subcommand).
	CGO_ENABLED=0 go build -trimpath -o $(LOCALBIN)/flow-ci ./cmd/manager

.PHONY: run
run: manifests generate ## Run the operator against the current kubeconfig (clone Jobs use $(IMG)).
	go run ./cmd/manager --clone-image=$(IMG) $(ARGS)

.PHONY: docker-build
docker-build: ## Build the image with Docker, for users who have it.
	docker build -t $(IMG) .

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
