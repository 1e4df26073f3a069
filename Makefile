# The handful of commands people run. `make test` is what CI runs.
SHELL := /bin/bash
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

.PHONY: setup test devnet lint fmt bench fuzz-build

## Install the pinned npm toolchain (forge, anvil, cast, solcjs, OpenZeppelin) and a regtest bitcoind.
setup:
	@scripts/bootstrap.sh

## The full check: formatting, lints, contracts, artifacts, Rust tests, Foundry tests, gas snapshot.
test:
	@scripts/test.sh

## The main job: a local devnet with embedded defaults (Ctrl-C stops it).
devnet: setup
	cargo run --release --bin proofpool -- devnet

## Format Rust and Solidity in place.
fmt:
	cargo fmt --all
	forge fmt

## Criterion benchmarks (figures go in the issue notes).
bench: setup
	cargo bench -p proofpool-merkle --bench trees

.PHONY: bench-load
## Load benchmark of the pool on loopback (real bitcoind and store, pool in its own process): latency at 50k/s, throughput over Stratum V1 and V2, block-to-notify with 10k miners, idle memory (V1 and V2), bytes per share; SQLite, then PostgreSQL; about 7 minutes.
BIN := $(or $(CARGO_TARGET_DIR),target)/release
bench-load: setup
	cargo build --release -p proofpool -p proofpool-loadgen
	$(BIN)/proofpool-load --pool-bin $(BIN)/proofpool --json $(BIN)/bench-load-sqlite.json
	$(BIN)/proofpool-load --pool-bin $(BIN)/proofpool --postgres --phases rate,throughput --json $(BIN)/bench-load-postgres.json

.PHONY: fuzz
## cargo-fuzz targets for 60 s each (one, longer: make fuzz FUZZ_TARGET=stratum_line FUZZ_SECONDS=600).
fuzz:
	@scripts/fuzz.sh $(or $(FUZZ_TARGET),all) $(or $(FUZZ_SECONDS),60)
