#!/usr/bin/env bash
# The README's test command (`make test`): installs what it needs, then runs
# every check CI relies on. Each step says what it is before it runs.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export PATH="$root/node_modules/.bin:$PATH"
step() { printf '\n==> %s\n' "$*"; }
start=$SECONDS

step "bootstrap (npm toolchain, bitcoind)"
scripts/bootstrap.sh

step "cargo fmt --check"
cargo fmt --all --check

step "forge fmt --check"
forge fmt --check

step "forge build --sizes"
forge build --sizes

step "contract artifacts used by sol! are current"
scripts/sync-artifacts.sh --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test --workspace"
cargo test --workspace --locked

step "fuzz targets build, seeds and regressions replay (scripts/fuzz.sh --check)"
scripts/fuzz.sh --check

step "forge test"
forge test

step "forge snapshot --check"
forge snapshot --check

printf '\nall checks passed in %ss\n' "$((SECONDS - start))"
