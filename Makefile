# kiln — run `make help` for the targets.
SHELL := bash
GO ?= go
BIN := bin
# An execution count, not a duration: a duration races Go's fuzzing
# coordinator at its deadline and fails with "context deadline exceeded".
FUZZTIME ?= 200000x
# Each new input the fuzzer keeps is minimised first; a count bounds that
# too (by default it may take a minute per input: CI saw 24 s stalls).
FUZZMINIMIZE ?= 2000x
# Each archive input is written to disk and opened: fewer of them.
FUZZARCHIVE ?= 20000x
TOOLS_ENV = eval "$$(bash .ci/tools.sh $(1))"
PODMAN_RUN := podman run --rm --runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024

.PHONY: help build test unit run serve bench compare lint fuzz tools clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

# kustomize (kiln resolve -k) imports Go's plugin package, which with cgo
# makes the linker export every symbol: +7 MB of binary and +6 to +13 MB
# resident at each start. kiln never loads kustomize plugins; the tag leaves that code out.
GOTAGS ?= kustomize_disable_go_plugin_support

build: ## compile kiln and the server into bin/
	$(GO) build -trimpath -tags '$(GOTAGS)' -o $(BIN)/ ./cmd/...

tools: ## install what the tests need (podman, runc, debootstrap, chromium; ko, crane, cosign, helm, the OCI conformance suite) into the tools cache
	bash .ci/tools.sh podman debootstrap chromium ko crane cosign helm conformance >/dev/null

test: lint ## install test tools, then run every test with the race detector
	$(call TOOLS_ENV,podman debootstrap chromium ko crane cosign helm conformance) && $(GO) test -race -count=1 -timeout 40m ./...
	$(GO) test -count=1 -run 'TestBuildStreams' ./internal/layer/  # allocation counts mean nothing under -race
	$(MAKE) fuzz

fuzz: ## fuzz the registry's manifest and name parsing, compare's archive readers and the build service's upload reader, each for a bounded number of inputs
	$(GO) test -run '^$$' -fuzz '^FuzzPutManifest$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) ./internal/store/
	$(GO) test -run '^$$' -fuzz '^FuzzParsePath$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) ./internal/registry/
	$(GO) test -run '^$$' -fuzz '^FuzzOpenArchive$$' -fuzztime $(FUZZARCHIVE) -fuzzminimizetime $(FUZZMINIMIZE) ./internal/compare/
	$(GO) test -run '^$$' -fuzz '^FuzzSaveUpload$$' -fuzztime $(FUZZARCHIVE) -fuzzminimizetime $(FUZZMINIMIZE) ./internal/source/

unit: ## run the tests that need no outside program
	$(GO) test -race -short ./...

run: build ## build ./cmd/server with kiln into the local store and print how to run it
	@ref=$$($(BIN)/kiln build ./cmd/server) && \
	echo "built $$ref" && \
	echo "stored in the OCI layout $${KILN_STORE:-$${XDG_DATA_HOME:-$$HOME/.local/share}/kiln/store}" && \
	echo "run it with podman:" && \
	echo "  $(BIN)/kiln build --load -B --tag dev ./cmd/server" && \
	echo "  $(PODMAN_RUN) --network host kiln.local/server:dev --addr 127.0.0.1:8080" && \
	echo "  curl http://127.0.0.1:8080/healthz"

# make serve's settings: GIT_ALLOW (host globs, space-separated, git sources may
# name), WORKSPACE (a directory whose subdirectories builds may name), SIGNING_KEY
# (a cosign key for "sign": true; password from COSIGN_PASSWORD), SERVE_ARGS (any
# other server flags). All off when empty.
GIT_ALLOW ?=
WORKSPACE ?=
SIGNING_KEY ?=
SERVE_ARGS ?=

serve: build ## start the build service on 127.0.0.1:8080 (data in $XDG_DATA_HOME/kiln/serve; GIT_ALLOW=HOSTS WORKSPACE=DIR SIGNING_KEY=FILE SERVE_ARGS=...) and print how to use it
	@data=$${XDG_DATA_HOME:-$$HOME/.local/share}/kiln/serve && mkdir -p $$data && \
	set -- --addr 127.0.0.1:8080 --data "$$data" && \
	for h in $(GIT_ALLOW); do set -- "$$@" --git-allow "$$h"; done && \
	if [ -n '$(WORKSPACE)' ]; then set -- "$$@" --workspace '$(WORKSPACE)'; fi && \
	if [ -n '$(SIGNING_KEY)' ]; then set -- "$$@" --signing-key '$(SIGNING_KEY)'; fi && \
	echo "build service: http://127.0.0.1:8080/api/v1/builds  registry: 127.0.0.1:8080  ready: http://127.0.0.1:8080/readyz  metrics: http://127.0.0.1:8080/metrics" && \
	echo "data: $$data" && \
	echo "git sources: $(if $(strip $(GIT_ALLOW)),from $(strip $(GIT_ALLOW)),off (GIT_ALLOW='git.example.com *.example.com' make serve))" && \
	echo "workspace sources: $(if $(strip $(WORKSPACE)),{\"workspace\": \"DIR\"} under $(WORKSPACE),off (WORKSPACE=DIR make serve))" && \
	echo "signing: $(if $(strip $(SIGNING_KEY)),with $(SIGNING_KEY),off (SIGNING_KEY=cosign.key make serve))" && \
	echo "build on it:  $(BIN)/kiln build --remote http://127.0.0.1:8080 ./cmd/server" && \
	exec $(BIN)/server "$$@" $(SERVE_ARGS)

bench: build ## kiln vs ko vs go build, kiln vs podman after an edit, the registry vs crane (numbers to stdout)
	$(call TOOLS_ENV,ko crane podman debootstrap) && bash scripts/bench.sh && bash scripts/bench-registry.sh && bash scripts/bench-resolve.sh && \
	out=$$(mktemp -d) && bash scripts/compare.sh $$out && sed -n '/^| build/,/plain multi-stage build/p' $$out/comparison.md && rm -rf $$out

compare: build ## build Dockerfile.reference (podman) and ./cmd/server (kiln), write docs/comparison.{md,html,json}
	$(call TOOLS_ENV,podman debootstrap) && bash scripts/compare.sh docs

lint: ## go vet and gofmt
	$(GO) vet ./...
	@out=$$(gofmt -l cmd internal); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi

clean: ## remove build outputs
	rm -rf $(BIN)
