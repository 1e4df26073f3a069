#!/usr/bin/env bash
# Removes test and bench executables that a newer build of the same target
# has replaced from the cargo target dir ($CARGO_TARGET_DIR, or target/):
# each build of a changed test binary links a new one of 100-300 MB beside
# the old, and a long-lived target dir shared by many builds (CI's clones
# use one) once filled the disk with 64 GB of them. Keeps the newest of each
# name, so nothing is rebuilt that a current build would reuse.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
deps="${CARGO_TARGET_DIR:-$root/target}/debug/deps"
[ -d "$deps" ] || exit 0
# Executables are the files without an extension (libraries and
# dependency files have one).
names=$(find "$deps" -maxdepth 1 -type f -perm -u+x ! -name '*.*' -printf '%f\n' \
  | sed 's/-[0-9a-f]\{16\}$//' | sort | uniq -d)
for name in $names; do
  # Newest first; everything after the first goes.
  ls -t "$deps/$name"-???????????????? 2>/dev/null | tail -n +2 | while read -r old; do
    rm -f "$old" "$old.d"
  done
done
echo "prune-target: kept the newest executable of each test and bench in $deps"
