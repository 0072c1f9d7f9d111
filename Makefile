# hashpool — build, test, benchmark. `make help` lists the targets.
GO        ?= go
export GOFLAGS ?= -buildvcs=false
BIN       := bin
FUZZTIME  ?= 10s
PKGS      := ./...

.PHONY: help build test test-short bench bench-ckpool ckpool fuzz lint demo agent-cross clean

help: ## list the targets
	@awk 'BEGIN{FS=":.*## "} /^[a-zA-Z_-]+:.*## /{printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build every command into ./bin
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/...

test: lint ## lint, the whole suite under the race detector, then the allocation tests without it (what CI runs)
	$(GO) test -race -timeout 25m $(PKGS)
	$(GO) test -count=1 -run Alloc $(PKGS)

test-short: ## quick tests without the race detector (skips the slow ones)
	$(GO) test -short $(PKGS)

bench: ## micro benchmarks and loadgen scenarios; writes bench/RESULTS.md
	$(GO) run ./bench/suite -out bench/RESULTS.md

CKPOOL_GIT ?= /work/.mirror/ctubio+ckpool/repo/.git
CKPOOL_SRC ?= /work/peers/ckpool-bench
export CKPOOL_GIT CKPOOL_SRC
ckpool: ## build ckpool (the bench baseline) from its public source into $(CKPOOL_SRC), outside the repo
	bash bench/ckpool/build.sh

bench-ckpool: ## only the ckpool vs hashpool table, quick (~5 min), spliced into bench/RESULTS.md
	$(GO) run ./bench/suite -scenarios ckpool-compare -quick

fuzz: ## run every fuzz target for FUZZTIME (default 10s) each
	bash scripts/fuzz.sh $(FUZZTIME)

lint: ## gofmt check, go vet, staticcheck (pinned via the go.mod tool directive)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)

BLOCKS ?= 10
LINGER ?= 0s
demo: ## regtest btcd + hashpool run + loadgen miners until BLOCKS (10) blocks are found; prints the dashboard URL (LINGER=10m keeps mining; AUX=1 merge-mines namecoind regtest)
	$(GO) run ./cmd/demo -blocks $(BLOCKS) -linger $(LINGER) $(if $(AUX),-aux)

agent-cross: ## btcagent for linux amd64/arm64/armv7/mipsle(softfloat) and windows amd64 into ./bin
	@mkdir -p $(BIN)
	CGO_ENABLED=0 GOOS=linux   GOARCH=amd64                 $(GO) build -trimpath -ldflags=-s -o $(BIN)/btcagent-linux-amd64 ./cmd/btcagent
	CGO_ENABLED=0 GOOS=linux   GOARCH=arm64                 $(GO) build -trimpath -ldflags=-s -o $(BIN)/btcagent-linux-arm64 ./cmd/btcagent
	CGO_ENABLED=0 GOOS=linux   GOARCH=arm    GOARM=7        $(GO) build -trimpath -ldflags=-s -o $(BIN)/btcagent-linux-arm ./cmd/btcagent
	CGO_ENABLED=0 GOOS=linux   GOARCH=mipsle GOMIPS=softfloat $(GO) build -trimpath -ldflags=-s -o $(BIN)/btcagent-linux-mipsle ./cmd/btcagent
	CGO_ENABLED=0 GOOS=windows GOARCH=amd64                 $(GO) build -trimpath -ldflags=-s -o $(BIN)/btcagent-windows-amd64.exe ./cmd/btcagent

clean: ## remove build output
	rm -rf $(BIN)
