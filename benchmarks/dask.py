"""Dask timings on the lab fleet (`make lab` first), measured side by side in one run.

  python -m benchmarks.dask [ROUNDS]

Each side runs the example mapping flow (flows/dask_mapping) as a production deployment run on
atd-data02, and takes the time the flow itself measured around its map (`seconds` in its
DASK_REPORT line), so that the run's own start-up is left out:

- overhead: 1,000 tasks that do nothing, through the production cluster on the swarm vs an
  in-process cluster of threads in the flow's own process (the run's job variables clear
  DASK_SCHEDULER_ADDRESS), alternating, ROUNDS runs per side (default 3; `make bench-dask` runs 2);
- scale-out: 200 tasks of 0.2 s on all of the production cluster's workers vs on one (the
  worker service is scaled to 1 and back with `docker service scale`), alternating.

Numbers, not verdicts: nothing here fails on a timing. Each task is also a Prefect task run that
reports its states to the API, which is most of a tiny task's cost.
"""

from __future__ import annotations

import statistics
import sys

from lab.dask import run_mapping, scale_workers, workers_joined
from lab.fleet import Api, Lab

INVENTORY = "inventories/lab"
ENVIRONMENT = "production"
IN_PROCESS = {"env": {"DASK_SCHEDULER_ADDRESS": ""}}


def mapped_seconds(api: Api, parameters: dict, job_variables: dict | None = None) -> float:
    run = run_mapping(api, ENVIRONMENT, parameters, job_variables, timeout=1200)
    if run.state != "COMPLETED" or not run.report:
        raise SystemExit(f"run {run.id} ended {run.state} with report {run.report}")
    return run.report["seconds"]


def line(name: str, values: list[float]) -> str:
    return f"  {name:<34} median {statistics.median(values):6.2f} s   runs {', '.join(f'{v:.2f}' for v in values)}"


def main(argv: list[str]) -> int:
    rounds = int(argv[0]) if argv else 3
    lab = Lab.of(INVENTORY)
    api = lab.api
    replicas = workers_joined(lab, ENVIRONMENT)

    swarm, local = [], []
    for _ in range(rounds):
        swarm.append(mapped_seconds(api, {"tasks": 1000}))
        local.append(mapped_seconds(api, {"tasks": 1000}, IN_PROCESS))
    print(f"1,000 tiny tasks, mapped and gathered ({rounds} runs per side, alternating):")
    print(line(f"swarm cluster ({replicas} workers)", swarm))
    print(line("in-process LocalCluster (threads)", local))
    print(f"  ratio swarm / in-process: {statistics.median(swarm) / statistics.median(local):.2f}x")

    one, every = [], []
    try:
        for _ in range(rounds):
            every.append(mapped_seconds(api, {"tasks": 200, "seconds": 0.2}))
            scale_workers(lab, ENVIRONMENT, 1)
            one.append(mapped_seconds(api, {"tasks": 200, "seconds": 0.2}))
            scale_workers(lab, ENVIRONMENT, replicas)
    finally:
        scale_workers(lab, ENVIRONMENT, replicas)
    print(f"200 tasks of 0.2 s on the swarm ({rounds} runs per side, alternating):")
    print(line("one worker", one))
    print(line(f"all {replicas} workers", every))
    print(f"  speed-up, all workers vs one: {statistics.median(one) / statistics.median(every):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
