# Folio: one command runs the suite, one runs the tests (see README.md).

CARGO ?= cargo
BUF_VERSION := 1.75.0
TOOLS := .tools
BUF := $(TOOLS)/node_modules/.bin/buf

.PHONY: run test lint fmt bench soak tools build clean-data client-check

## Build and start auth, account, ledger and gateway on the embedded defaults.
run:
	@bash scripts/run.sh

## Every test: the workspace (needs PostgreSQL and Redis on 127.0.0.1), then the
## deployment manifests (needs kubectl and `pip install kubernetes-validate pyyaml`).
test:
	$(CARGO) nextest run --workspace --no-fail-fast
	python3 deploy/tests/check_manifests.py

## A Python client generated from proto/ runs the customer journey against
## `make run` (started and stopped here, on a throw-away data directory).
client-check:
	@bash scripts/client-check.sh

## buf lint (STANDARD + COMMENTS), clippy with warnings denied, rustfmt check.
lint: $(BUF)
	cd proto && ../$(BUF) lint
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) fmt --all -- --check

fmt:
	$(CARGO) fmt --all

## Benchmarks against the PostgreSQL ceiling measured in the same run.
bench:
	@bash scripts/bench.sh

## Steady load through the gateway; RSS slope per service (SOAK_SECONDS, default 300).
soak:
	@bash scripts/soak.sh

build:
	$(CARGO) build --workspace --bins

tools: $(BUF)

$(BUF):
	mkdir -p $(TOOLS)
	cd $(TOOLS) && npm install --silent --no-audit --no-fund @bufbuild/buf@$(BUF_VERSION) >/dev/null

clean-data:
	rm -rf .folio
