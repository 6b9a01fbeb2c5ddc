"""Converge a lab fleet under a steady load of runs, then read every run back:

    make converge-under-load [INVENTORY=...]

For a converge that hands hosts over while runs go on (a host of an older layout taken to this
one, a new Prefect release): each environment's `etl-report` deployment gets a run every few
seconds on the `etl` queue and on the last worker host's own label, each lasting 30 s, from before
`site.yml` starts until it ends. Every run must end Completed at its first attempt; the counts
and any run that did not are printed, and the exit status says which (docs/testing.md).
"""

from __future__ import annotations

import sys
import time
from collections import Counter

from lab.ansible import playbook, recaps
from lab.fleet import Lab, workers
from lab.load import Load, unclean


def main(argv: list[str]) -> int:
    inventory = argv[0] if argv else "inventories/lab"
    lab = Lab.of(inventory)
    queues = ["etl", workers(lab)[-1]]
    loads = []
    for environment in lab.server["fleet_environments"]:
        api = lab.api_for(environment)
        found = api.call("GET", f"/deployments/name/fleet-report/etl-report-{environment}-etl")
        loads.append(Load(api, found["id"], queues, every=4.0, seconds=30.0))
    for load in loads:
        load.start()
    time.sleep(15)  # runs in flight on the hosts before the converge touches them
    started = time.monotonic()
    result = playbook(inventory, "site.yml", check=False)
    took = time.monotonic() - started
    for load in loads:
        load.stopping.set()
    for load in loads:
        load.join(timeout=60)
    print(result.stdout[-2500:])
    changed = {host: counts["changed"] for host, counts in recaps(result.stdout).items()}
    outcomes = [outcome for load in loads for outcome in load.outcomes(timeout=900)]
    bad = unclean(outcomes)
    states = dict(Counter(outcome.state for outcome in outcomes))
    print(f"site.yml: exit {result.returncode} in {took:.0f} s, changed per host {changed}")
    print(f"runs submitted during it: {len(outcomes)}, {states}; not Completed at the first attempt: {len(bad)}")
    for line in bad:
        print("  " + line)
    return 0 if result.returncode == 0 and outcomes and not bad else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
