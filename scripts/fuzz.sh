#!/usr/bin/env bash
# The cargo-fuzz targets in fuzz/ (`make fuzz`).
#
#   scripts/fuzz.sh [TARGET|all] [SECONDS]   fuzz each target for SECONDS (default: all, 60)
#   scripts/fuzz.sh --check                  build every target, then replay the seeds and
#                                            regressions once (what scripts/test.sh runs)
#
# Installs cargo-fuzz when it is missing. cargo-fuzz needs nightly-only rustc
# flags; RUSTC_BOOTSTRAP=1 lets the installed stable toolchain take them.
# Targets build with overflow checks and debug assertions but no sanitizer:
# our crates forbid `unsafe`, and ASan halves the exec rate
# (FUZZ_SANITIZER=address turns it on). They build into
# $CARGO_TARGET_DIR/fuzz (target/fuzz by default), so a CI cache of the
# target dir keeps them.
#
# A run starts from fuzz/seeds/<target> (committed) and fuzz/corpus/<target>
# (what earlier runs found; not committed), uses fuzz/dicts/<target>.dict
# when there is one, runs one process on one core, and writes a crashing
# input to fuzz/artifacts/<target>/. Keep such an input, once fixed, in
# fuzz/regressions/<target>/: --check replays it from then on.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export RUSTC_BOOTSTRAP=1
CARGO_FUZZ_VERSION=0.13.2
sanitizer="${FUZZ_SANITIZER:-none}"
target_dir="${CARGO_TARGET_DIR:-$root/target}/fuzz"

usage() { sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION (about 2 minutes)"
  cargo install --quiet --locked "cargo-fuzz@$CARGO_FUZZ_VERSION"
fi

targets() { cargo fuzz list; }

build() {
  local started=$SECONDS
  cargo fuzz build --sanitizer "$sanitizer" --target-dir "$target_dir" "$@"
  echo "fuzz: built ${1:-every target} in $((SECONDS - started))s"
}

# Dictionary and seed/regression dirs for a target, as libFuzzer arguments.
dict_arg() { [ -f "fuzz/dicts/$1.dict" ] && echo "-dict=fuzz/dicts/$1.dict" || true; }
known_inputs() {
  local d
  for d in "fuzz/seeds/$1" "fuzz/regressions/$1"; do
    [ -d "$d" ] && echo "$d"
  done
  return 0
}

if [ "${1:-}" = "--check" ]; then
  [ $# -eq 1 ] || usage
  build
  for t in $(targets); do
    mapfile -t inputs < <(known_inputs "$t")
    [ ${#inputs[@]} -gt 0 ] || continue
    # -runs=0: execute the given corpora once, mutate nothing.
    out="$(cargo fuzz run --sanitizer "$sanitizer" --target-dir "$target_dir" "$t" \
      "${inputs[@]}" -- -runs=0 2>&1)" || { echo "$out" >&2; echo "fuzz: $t failed on a known input" >&2; exit 1; }
    echo "fuzz: $t: $(grep -o 'INITED.*' <<<"$out" | head -n1) (${inputs[*]})"
  done
  exit 0
fi

target="${1:-all}"
seconds="${2:-60}"
[[ "$seconds" =~ ^[0-9]+$ ]] || usage
case "$target" in
  all) run_targets="$(targets)" ;;
  -*) usage ;;
  *) targets | grep -qx "$target" || { echo "fuzz: no target $target; have: $(targets | xargs)" >&2; exit 2; }
     run_targets="$target" ;;
esac

build
for t in $run_targets; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  mapfile -t inputs < <(known_inputs "$t")
  log="fuzz/artifacts/$t/last-run.log"
  echo "fuzz: $t for ${seconds}s (log: $log)"
  status=0
  cargo fuzz run --sanitizer "$sanitizer" --target-dir "$target_dir" "$t" \
    "fuzz/corpus/$t" "${inputs[@]}" -- \
    -max_total_time="$seconds" -print_final_stats=1 $(dict_arg "$t") >"$log" 2>&1 || status=$?
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
  took="$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log")"
  last="$(grep -E '^#[0-9]+' "$log" | tail -n1 | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [^ ]+' || true)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")"
  echo "fuzz: $t: ${execs:-?} execs in ${took:-?}s (${rate:-?} exec/s), ${last:-no coverage line}"
  if [ "$status" -ne 0 ]; then
    grep -E 'panicked at|ERROR: libFuzzer|Test unit written to' "$log" >&2 || tail -n 30 "$log" >&2
    echo "fuzz: $t failed; the input is in fuzz/artifacts/$t/" >&2
    exit "$status"
  fi
done
