"""Map many small tasks through Dask and report where each one ran.

On the fleet the tasks run on the environment's Dask cluster (DASK_SCHEDULER_ADDRESS, set by the
fleet); with no address they run on a cluster of threads inside the flow's own process. The fleet's
end-to-end tests and benchmark read the DASK_REPORT line of the run's logs.
Runs on its own too: `python flows/dask_mapping/mapping.py`.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from prefect import flow, get_run_logger, task, unmapped

# flows/ holds the helper shared by the flow projects; a run started by the fleet has it on its
# path already (the run starts in flows/), a script run from anywhere else needs it added.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from fleet_dask import dask_task_runner, scheduler_address


@task(retries=1)
def probe(index: int, seconds: float) -> dict[str, object]:
    """Sleep `seconds`, then say which Dask worker, host and process ran this task."""
    from distributed import get_worker

    time.sleep(seconds)
    try:
        worker = get_worker().address
    except ValueError:
        worker = "none"
    return {"index": index, "worker": worker, "host": socket.gethostname(), "pid": os.getpid()}


@flow(name="dask-mapping", task_runner=dask_task_runner(__name__))
def dask_mapping(tasks: int = 200, seconds: float = 0.0) -> dict[str, object]:
    """Run `tasks` probes of `seconds` each; return and log where they ran."""
    started = time.monotonic()
    results = probe.map(range(tasks), unmapped(seconds)).result()
    elapsed = time.monotonic() - started
    here = (socket.gethostname(), os.getpid())
    # The commit of the checkout the run started in: the code its tasks ran, sent by value.
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        head = ""
    report = {
        "commit": head or "unknown",
        "scheduler": scheduler_address() or "in-process",
        "host": here[0],
        "environment": os.environ.get("FLEET_ENVIRONMENT", "local"),
        "tasks": len(results),
        "indexes": sorted(r["index"] for r in results) == list(range(tasks)),
        "in_process": sum((r["host"], r["pid"]) == here for r in results),
        "workers": dict(Counter(str(r["worker"]) for r in results)),
        "task_hosts": sorted({str(r["host"]) for r in results}),
        "seconds": round(elapsed, 3),
    }
    get_run_logger().info("DASK_REPORT %s", json.dumps(report, sort_keys=True))
    return report


if __name__ == "__main__":
    print(json.dumps(dask_mapping(tasks=int(sys.argv[1]) if len(sys.argv) > 1 else 20)))
