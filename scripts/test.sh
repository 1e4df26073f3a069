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
# npm's forge, anvil and cast wrappers do not pass on the tool's exit
# status (a failing `forge test` exits 0 through them): call the platform
# binaries they wrap.
for tool in forge anvil cast; do
  for bin in "$root"/node_modules/@foundry-rs/"$tool"-*/bin; do
    [ -x "$bin/$tool" ] && PATH="$bin:$PATH"
  done
done
export PATH
forge --version >/dev/null

step "prune superseded test binaries from the target dir"
scripts/prune-target.sh

step "cargo fmt --check"
cargo fmt --all --check

step "forge fmt --check"
forge fmt --check

# Scripts are run in forge's VM, never deployed: only what they deploy has
# to fit EIP-170 (the Deploy script embeds the distributor's and the mock
# token's init code, which together pass it).
step "forge build --sizes --skip script"
forge build --sizes --skip script

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

step "mutation check: the invariant suite kills every mutant (scripts/mutants.sh)"
scripts/mutants.sh

printf '\nall checks passed in %ss\n' "$((SECONDS - start))"
