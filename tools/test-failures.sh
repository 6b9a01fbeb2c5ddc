#!/usr/bin/env bash
# `make test`'s last word: given its exit status and the folder of its pytest runs' logs, print
# each run's failures again (the lines of pytest's short summary; a failed molecule scenario's
# last lines) when the suite failed, so that a failure of a part run beside another is at the end
# of the output, not only where that part's output was. Keeps the exit status.
status=$1 logs=$2
if ((status)) && [[ -d $logs ]]; then
  echo "test: failed (exit $status); the failures of each pytest run:"
  for log in "$logs"/*.log; do
    [[ -e $log ]] || continue
    # Without pytest's rules of "=": .ci/run adds up the lines that have them.
    echo "--- $(basename "$log" .log):$(grep -E '^=+ .*(passed|failed|error|no tests ran)' "$log" | tail -1 | tr -d '=')"
    grep -E '^(FAILED|ERROR) ' "$log" || true
  done
  # A failed molecule scenario's last lines (tools/molecule-all.sh, MOLECULE_FAILURE_DIR).
  for tail in "$logs"/*.tail; do
    [[ -e $tail ]] || continue
    echo "--- molecule $(basename "$tail" .tail | sed 's|--|/|'): the end of its log"
    cat "$tail"
  done
fi
exit "$status"
