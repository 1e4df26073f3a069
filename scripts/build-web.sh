#!/usr/bin/env bash
# Installs the web app's npm packages (web/, its own npm project pinned by
# web/package-lock.json) and builds it into web/dist, which `proofpool api`
# serves. Idempotent and quiet: it reinstalls only when the lock changed and
# rebuilds only when a source changed (stamps of their hashes), printing
# nothing otherwise.
#
# Usage: scripts/build-web.sh [--force]   (--force rebuilds regardless)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
web="$root/web"
die() { echo "build-web: $*" >&2; exit 1; }
force=0
[[ "${1:-}" == "--force" ]] && force=1

log="$(mktemp "${TMPDIR:-/tmp}/build-web.XXXXXX.log")"
trap 'rm -f "$log"' EXIT
failed() { # what
  tail -30 "$log" >&2
  die "$1 failed (output above)"
}

# `npm ci` (the lock lists every platform's optional packages here, unlike the
# root toolchain's): exactly the locked versions, from a clean node_modules.
lock_sum="$(sha256sum "$web/package-lock.json" | cut -d' ' -f1)"
lock_stamp="$web/node_modules/.proofpool-lock"
if [[ ! -f "$lock_stamp" || "$(cat "$lock_stamp")" != "$lock_sum" ]]; then
  echo "build-web: installing the web app's npm packages (npm ci in web/)"
  (cd "$web" && npm ci --no-audit --no-fund --loglevel=error) >"$log" 2>&1 ||
    failed "npm ci in web/ (is the npm registry reachable?)"
  echo "$lock_sum" >"$lock_stamp"
fi

# Everything the bundle is made from, the contract ABI included.
sources_sum() {
  cd "$web"
  {
    find index.html src public -type f -print0 2>/dev/null | sort -z | xargs -0 sha256sum
    sha256sum package.json package-lock.json tsconfig.json vite.config.ts \
      ../core/chain/artifacts/Distributor.json
  } | sha256sum | cut -d' ' -f1
}
src_sum="$(sources_sum)"
dist_stamp="$web/dist/.proofpool-sources"
if [[ $force == 1 || ! -f "$dist_stamp" || ! -f "$web/dist/index.html" || "$(cat "$dist_stamp")" != "$src_sum" ]]; then
  echo "build-web: building the web app (npm run build → web/dist)"
  (cd "$web" && npm run build) >"$log" 2>&1 || failed "npm run build in web/"
  echo "$src_sum" >"$dist_stamp"
fi
