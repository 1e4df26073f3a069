#!/usr/bin/env bash
# Copies the ABI and bytecode of the deployable contracts from forge's out/ into
# core/chain/artifacts/, where `sol!` reads them at compile time. The copies are
# committed so cargo builds without forge; `--check` fails if they are stale.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
check=0
[ "${1:-}" = "--check" ] && check=1
dest="core/chain/artifacts"
mkdir -p "$dest"
stale=0
for name in Distributor MockBTC; do
  src="out/$name.sol/$name.json"
  if [ ! -f "$src" ]; then
    echo "sync-artifacts: $src is missing; run 'forge build' first" >&2
    exit 1
  fi
  tmp="$(mktemp)"
  node -e '
    const a = require(process.argv[1]);
    const out = { abi: a.abi, bytecode: { object: a.bytecode.object }, deployedBytecode: { object: a.deployedBytecode.object } };
    process.stdout.write(JSON.stringify(out, null, 1) + "\n");
  ' "$root/$src" >"$tmp"
  if [ $check = 1 ]; then
    if ! cmp -s "$tmp" "$dest/$name.json"; then
      echo "sync-artifacts: $dest/$name.json is stale; run scripts/sync-artifacts.sh and commit it" >&2
      stale=1
    fi
    rm -f "$tmp"
  else
    mv "$tmp" "$dest/$name.json"
  fi
done
exit $stale
