#!/usr/bin/env bash
# Installs everything proofpool needs beyond the Rust toolchain, Node/npm and
# apt: the pinned npm toolchain (forge, anvil, cast, solcjs, OpenZeppelin), a
# regtest bitcoind, PostgreSQL's server binaries, the web app (web/: its npm
# packages and its build in web/dist), Chromium for the browser tests and the
# SRI translator proxy for the Stratum V2 tests.
# Idempotent: when everything is present and built it prints nothing and takes
# well under a second.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
die() { echo "bootstrap: $*" >&2; exit 1; }

command -v cargo >/dev/null || die "cargo is missing: install the Rust toolchain (rustup)"
command -v node >/dev/null || die "node is missing: install Node.js 20+ (apt-get install nodejs npm)"
command -v npm >/dev/null || die "npm is missing: apt-get install npm"

# npm toolchain, pinned by package-lock.json. Reinstall when the lock changes.
# `npm install --no-save` rather than `npm ci`: the registry here lacks some of
# Foundry's other-platform optional packages, so the lock cannot list them and
# `npm ci` refuses it; `install` still takes every version from the lock.
lock_sum="$(sha256sum package-lock.json | cut -d' ' -f1)"
stamp="node_modules/.proofpool-lock"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sum" ]; then
  echo "bootstrap: installing the npm toolchain"
  npm install --no-save --no-audit --no-fund --loglevel=error \
    || die "npm install failed; check that the npm registry is reachable"
  echo "$lock_sum" >"$stamp"
fi
for tool in forge anvil cast; do
  bin="node_modules/@foundry-rs/$tool-linux-amd64/bin/$tool"
  [ -x "$bin" ] || die "$bin is missing after npm install: is this an x86_64 Linux machine?"
done
[ -f node_modules/solc/solc.js ] || die "solcjs is missing after npm install"
[ -d node_modules/@openzeppelin/contracts ] || die "@openzeppelin/contracts is missing after npm install"

# A regtest bitcoind (Bitcoin Knots from Debian sid unless one is on PATH).
scripts/install-bitcoind.sh
# PostgreSQL's server binaries for the tests' throwaway clusters (Debian's package).
scripts/install-postgres.sh
# The web app: npm ci in web/ when its lock changed, npm run build when its
# sources changed (web/dist is what `proofpool api --web-dir` serves).
scripts/build-web.sh
# Debian's Chromium for the browser tests (playwright-core drives /usr/bin/chromium).
scripts/install-chromium.sh
# The SRI translator proxy (translator_sv2 from crates.io) for the Stratum V2 tests.
scripts/install-translator.sh
