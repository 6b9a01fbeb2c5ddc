#!/usr/bin/env bash
# Run `molecule test` for each role/scenario given, MOLECULE_JOBS at a time (default 2), each in
# its own role directory with its output in a log of its own; print each log whole, in the order
# the scenarios end, then one line per scenario with its outcome and duration. Exits non-zero if
# any scenario failed. Scenarios share nothing that would collide: every one names its own
# containers and network, and molecule keeps its state per role and scenario.
# Pass the longest scenarios first: the total is then close to the longest one's share.
# With MOLECULE_FAILURE_DIR set, the end of a failed scenario's log (without colours) is also
# written there as <role>--<scenario>.tail: `make test` prints it again as its last word, where a
# CI service that keeps only the end of the output still shows why.
set -euo pipefail
jobs=${MOLECULE_JOBS:-2}
molecule=${MOLECULE:-molecule}
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

# Where a scenario's output (.log) and outcome (.rc: "passed|FAILED seconds") go.
stem() { echo "$logs/${1//\//--}"; }

run_one() {
  local role=${1%%/*} scenario=${1#*/} out started outcome=passed
  out=$(stem "$1")
  started=$(date +%s)
  (cd "roles/$role" && "$molecule" test -s "$scenario") >"$out.log" 2>&1 || outcome=FAILED
  echo "$outcome $(($(date +%s) - started))" >"$out.rc"
}

# Print a scenario's log once it has ended.
report() {
  local out outcome seconds
  out=$(stem "$1")
  read -r outcome seconds <"$out.rc"
  echo "=== molecule $1 ($outcome in ${seconds} s)"
  cat "$out.log"
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
    if [[ -f $(stem "$s").rc ]]; then report "$s"; printed+=("$s"); else still+=("$s"); fi
  done
  running=("${still[@]+"${still[@]}"}")
done

failures=()
echo "=== molecule summary"
for s in "${printed[@]}"; do
  read -r outcome seconds <"$(stem "$s").rc"
  printf '  %-28s %-7s %5d s\n' "$s" "$outcome" "$seconds"
  [[ $outcome == passed ]] || failures+=("$s")
done
for s in "${failures[@]+"${failures[@]}"}"; do
  tail=$(sed -e 's/\x1b\[[0-9;]*m//g' "$(stem "$s").log" | grep -v '^[[:space:]│]*$' | tail -n 30)
  printf '=== molecule %s: the end of its log\n%s\n' "$s" "$tail"
  if [[ -n ${MOLECULE_FAILURE_DIR:-} ]]; then
    mkdir -p "$MOLECULE_FAILURE_DIR"
    printf '%s\n' "$tail" >"$MOLECULE_FAILURE_DIR/${s//\//--}.tail"
  fi
done
exit $((${#failures[@]} > 0))
