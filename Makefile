# Capstan: `make run` starts everything on this machine, `make test` runs every test.
GO       ?= go
BIN      := bin/capstan
DATA_DIR ?= ./data

# Development defaults; override on the command line or in the environment.
CAPSTAN_LISTEN         ?= 127.0.0.1:8080
CAPSTAN_ADMIN_TOKEN    ?= dev-admin-token
CAPSTAN_CLICKHOUSE_URL ?= clickhouse://default@127.0.0.1:9000/capstan
export CAPSTAN_LISTEN CAPSTAN_ADMIN_TOKEN CAPSTAN_CLICKHOUSE_URL

.PHONY: all build console run test test-short deps vet fmt clickhouse-start clickhouse-stop clean \
	bench-updates bench-stats bench-e2e bench-memory bench-all

all: build

build: console
	$(GO) build -trimpath -o $(BIN) ./cmd/capstan

# The web console (console/ui, npm + Vite), built into console/dist, which
# the binary embeds. npm ci runs when node_modules is missing or the
# lockfile changed; the build when a source changed.
CONSOLE_SRC := $(shell find console/ui/src -type f 2>/dev/null) console/ui/index.html \
	console/ui/vite.config.js console/ui/package.json
console: console/dist/index.html

console/ui/node_modules/.capstan-npm-ci: console/ui/package-lock.json
	cd console/ui && npm ci --no-audit --no-fund
	touch $@

console/dist/index.html: console/ui/node_modules/.capstan-npm-ci $(CONSOLE_SRC)
	cd console/ui && npm run build

# Installs what the tests need (Debian packages, chDB from npm); idempotent.
deps:
	bash .ci/install-deps

# All-in-one: embedded NATS JetStream, a local ClickHouse, the front and the consumer.
run: build
	bash deploy/local/clickhouse.sh start $(DATA_DIR)/clickhouse
	$(BIN) serve --data-dir $(DATA_DIR)

clickhouse-start:
	bash deploy/local/clickhouse.sh start $(DATA_DIR)/clickhouse

clickhouse-stop:
	bash deploy/local/clickhouse.sh stop $(DATA_DIR)/clickhouse

test: deps console
	cd console/ui && npm test
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 60m ./...

test-short:
	$(GO) test -short -count=1 ./...

# Benchmark scenarios (BENCHMARKS.md); each starts the processes it needs.
bench-updates bench-stats bench-e2e bench-memory bench-all: build
	$(BIN) bench $(patsubst bench-%,%,$@)

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
	find console/dist -mindepth 1 ! -name .gitkeep -delete
