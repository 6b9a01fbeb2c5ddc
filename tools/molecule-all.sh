#!/usr/bin/env bash
# Run `molecule test` for each role/scenario given, MOLECULE_JOBS at a time (default 2), each in
# its own role directory with its output in a log of its own; print each log whole, in the order
# the scenarios end, then one line per scenario with its outcome and duration. Exits non-zero if
# any scenario failed. Scenarios share nothing that would collide: every one names its own
# containers and network, and molecule keeps its state per role and scenario.
# Pass the longest scenarios first: the total is then close to the longest one's share.
set -euo pipefail
jobs=${MOLECULE_JOBS:-2}
molecule=${MOLECULE:-molecule}
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

run_one() {
  local s=$1 role=${1%%/*} scenario=${1#*/} started
  started=$(date +%s)
  if (cd "roles/$role" && "$molecule" test -s "$scenario") >"$logs/${s//\//--}.log" 2>&1; then
    echo "passed $(($(date +%s) - started))" >"$logs/${s//\//--}.rc"
  else
    echo "FAILED $(($(date +%s) - started))" >"$logs/${s//\//--}.rc"
  fi
}

# Print a scenario's log once it has ended.
report() {
  local s=$1 outcome seconds
  read -r outcome seconds <"$logs/${s//\//--}.rc"
  echo "=== molecule $s ($outcome in ${seconds} s)"
  cat "$logs/${s//\//--}.log"
}

pending=("$@")
running=()
printed=()
while ((${#pending[@]} + ${#running[@]})); do
  while ((${#running[@]} < jobs && ${#pending[@]})); do
    echo "=== molecule ${pending[0]}: started"
    run_one "${pending[0]}" &
    running+=("${pending[0]}")
    pending=("${pending[@]:1}")
  done
  wait -n || true
  still=()
  for s in "${running[@]}"; do
    if [[ -f $logs/${s//\//--}.rc ]]; then report "$s"; printed+=("$s"); else still+=("$s"); fi
  done
  running=("${still[@]+"${still[@]}"}")
done

failed=0
echo "=== molecule summary"
for s in "${printed[@]}"; do
  read -r outcome seconds <"$logs/${s//\//--}.rc"
  printf '  %-28s %-7s %5d s\n' "$s" "$outcome" "$seconds"
  [[ $outcome == passed ]] || failed=1
done
exit "$failed"
