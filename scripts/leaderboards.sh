#!/usr/bin/env bash
# The leaderboards' steps, one script for .ci/run and the GitHub workflows (so neither rots):
#
#   scripts/leaderboards.sh check                  `invbench leaderboard --check`, every board
#   scripts/leaderboards.sh report OUT             the static HTML report of every board in OUT
#   scripts/leaderboards.sh regenerate [--dry-run] re-run the grid of built-in inverters
#                                                  (--profile quick) into leaderboards/results,
#                                                  then re-render the boards
#
# A board is a results folder and the folder its tables go to; a board whose results folder
# does not exist is skipped. Environment: INVBENCH (the command, default `invbench`);
# for `regenerate`: ENCODERS (attacked, default "arcface"), EVAL_ENCODERS (judging, default
# "arcface dlib"), SEEDS (default "0"), INVERTERS (default: every inverter the built-in
# plugins register).
set -euo pipefail
cd "$(dirname "$0")/.."

INVBENCH=${INVBENCH:-invbench}
# results folder:tables folder
BOARDS=(
  "leaderboards/results:leaderboards"
  "leaderboards/robustness/results:leaderboards/robustness"
  "leaderboards/transfer/results:leaderboards/transfer"
)

boards() {  # the boards whose results folder exists, one "results:out" per line
  local board
  for board in "${BOARDS[@]}"; do
    if [ -d "${board%%:*}" ]; then echo "$board"; else echo "skip ${board%%:*} (no such folder)" >&2; fi
  done
}

check() {
  local board
  for board in $(boards); do
    echo "== invbench leaderboard --check --results ${board%%:*} --out ${board#*:}"
    $INVBENCH leaderboard --check --results "${board%%:*}" --out "${board#*:}"
  done
}

render() {
  local board
  for board in $(boards); do
    $INVBENCH leaderboard --results "${board%%:*}" --out "${board#*:}"
  done
}

report() {
  local out=${1:?usage: scripts/leaderboards.sh report OUT}
  local results=()
  local board
  for board in $(boards); do results+=("${board%%:*}"); done
  [ "${#results[@]}" -gt 0 ] || { echo "no results folder to report on" >&2; exit 1; }
  echo "== invbench report ${results[*]} --out $out"
  local t0
  t0=$(date +%s)
  $INVBENCH report "${results[@]}" --out "$out"
  echo "report built in $(( $(date +%s) - t0 ))s"
}

builtin_inverters() {  # every inverter registered by the built-in plugins
  $INVBENCH list inverter --json | python3 -c '
import json, sys
print(" ".join(c["name"] for c in json.load(sys.stdin) if c["provider"].startswith("invbench_plugins.")))'
}

regenerate() {
  local dry=${1:-}
  local inverters=${INVERTERS:-$(builtin_inverters)}
  [ -n "$inverters" ] || { echo "no built-in inverter found" >&2; exit 1; }
  # Records are written outside the checkout and copied in at the end: a run that saw
  # replaced (tracked) records would call its source tree dirty, and so its record unverified.
  local work
  work=$(mktemp -d)
  local args=(run --profile quick --no-progress --out "$work/results")
  local name
  for name in ${ENCODERS:-arcface}; do args+=(--encoder "$name"); done
  for name in $inverters; do args+=(--inverter "$name"); done
  for name in ${SEEDS:-0}; do args+=(--seed "$name"); done
  local judge
  for judge in ${EVAL_ENCODERS:-arcface dlib}; do
    echo "== $INVBENCH ${args[*]} --eval-encoder $judge"
    if [ "$dry" != "--dry-run" ]; then $INVBENCH "${args[@]}" --eval-encoder "$judge"; fi
  done
  if [ "$dry" = "--dry-run" ]; then rm -rf "$work"; return; fi
  local cell
  while read -r cell; do  # each new cell folder replaces the old one whole
    rm -rf "leaderboards/results/$cell"
    mkdir -p "$(dirname "leaderboards/results/$cell")"
    cp -R "$work/results/$cell" "leaderboards/results/$cell"
  done < <(cd "$work/results" && find . -name record.json -not -path '*/.*' -printf '%h\n')
  rm -rf "$work"
  render
}

case "${1:-}" in
  check) check ;;
  report) report "${2:-}" ;;
  regenerate) regenerate "${2:-}" ;;
  *) sed -n '2,14p' "$0" >&2; exit 2 ;;
esac
