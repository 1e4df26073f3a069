#!/usr/bin/env bash
# The mutation check: each mutant below removes or weakens one of the
# distributor's safety checks; the invariant suite (whose handlers also try
# the forbidden actions: early finalize, late veto, early role change, early
# or withdrawn parameters) must fail on every one. A mutant that survives means the suite no longer guards that check.
# The source is restored whatever happens.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export PATH="$root/node_modules/.bin:$PATH"
# The platform binary, not npm's wrapper: the wrapper exits 0 whatever the
# tests did.
for bin in "$root"/node_modules/@foundry-rs/forge-*/bin; do
  [ -x "$bin/forge" ] && PATH="$bin:$PATH"
done
export PATH
src=contracts/src/Distributor.sol
backup="$(mktemp)"
cp "$src" "$backup"
trap 'cp "$backup" "$src"; rm -f "$backup"' EXIT

# name|exact line of the contract|what replaces it (nothing: the line is removed)
mutants=(
  "finalize ignores the challenge period|        if (block.timestamp < r.finalizableAt) revert ChallengePeriodActive(epoch, r.finalizableAt);|"
  "veto ignores the challenge period|        if (block.timestamp >= r.finalizableAt) revert ChallengePeriodOver(epoch, r.finalizableAt);|"
  "a queued change applies at once|        if (block.timestamp < p.eta) revert ChangeNotReady(kind, p.eta);|"
  "a veto forgets the settler's refund|        if (refund != 0) refundOwed[_roles.settler] += refund;|"
  "new parameters take effect at once|        uint64 effectiveAt = uint64(block.timestamp) + _roles.challengePeriod;|        uint64 effectiveAt = uint64(block.timestamp);"
  "parameters in force can be withdrawn|        if (last.effectiveAt <= block.timestamp) revert NoParamsPending();|"
  "an announcement replaces the parameters in force|        if (last.effectiveAt > block.timestamp) {|        if (true) {"
  "commits fund the claimable balance, not the escrow|            address held = address(escrow);|            address held = address(this);"
  "finalize releases the pending epochs' funding too|        if (released != 0) escrow.pay(address(this), released);|        escrow.pay(address(this), token.balanceOf(address(escrow)));"
)

survived=0
for m in "${mutants[@]}"; do
  name="${m%%|*}"
  rest="${m#*|}"
  line="${rest%%|*}"
  replacement="${rest#*|}"
  cp "$backup" "$src"
  node -e '
    const fs = require("fs");
    const [file, line, replacement] = process.argv.slice(1);
    const text = fs.readFileSync(file, "utf8");
    const lines = text.split("\n");
    const i = lines.indexOf(line);
    if (i < 0 || lines.indexOf(line, i + 1) >= 0) {
      console.error("mutants: the line to change is not in the contract exactly once: " + line.trim());
      process.exit(2);
    }
    if (replacement === "") lines.splice(i, 1);
    else lines[i] = replacement;
    fs.writeFileSync(file, lines.join("\n"));
  ' "$src" "$line" "$replacement"
  if forge test --match-contract DistributorInvariantTest >/dev/null 2>&1; then
    echo "mutants: SURVIVED: $name"
    survived=$((survived + 1))
  else
    echo "mutants: killed: $name"
  fi
done
if [ "$survived" -ne 0 ]; then
  echo "mutants: $survived mutant(s) survived the invariant suite" >&2
  exit 1
fi
echo "mutants: every mutant was killed"
