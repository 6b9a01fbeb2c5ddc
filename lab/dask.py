"""The lab's Dask clusters, as the end-to-end tests and the benchmark reach them: the schedulers'
HTTP endpoints published on this machine, their worker services, and runs of the example mapping
flow (flows/dask_mapping) with the report each one logs."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request

from lab.fleet import Api, Lab, wait_for
from lab.flowruns import Run, start, wait

LABEL = "atd-data02"


def dashboard(lab: Lab, environment: str) -> str:
    """The HTTP endpoint of an environment's scheduler, as published on the lab's swarm (this machine)."""
    clusters = lab.server["fleet_dask_clusters"]
    return f"http://127.0.0.1:{clusters.get(environment, clusters.get('shared', {}))['dashboard_port']}"


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def workers_joined(lab: Lab, environment: str) -> int:
    return get_json(dashboard(lab, environment) + "/json/counts.json")["workers"]


def scale(service: str, replicas: int) -> None:
    subprocess.run(["docker", "service", "scale", "--detach", f"{service}={replicas}"], check=True, capture_output=True)


def answers(url: str) -> bool:
    try:
        get_json(url)
    except OSError:
        return False
    return True


def stop_scheduler(lab: Lab, environment: str, timeout: float = 120) -> None:
    """Scale an environment's scheduler service to 0 and wait until its endpoint stops answering
    (`docker service scale` returns before Swarm has stopped the task)."""
    scale(f"dask-{environment}-scheduler", 0)
    url = dashboard(lab, environment) + "/json/counts.json"
    wait_for(lambda: not answers(url), timeout, f"dask-{environment}-scheduler stopping", interval=1)


def scale_workers(lab: Lab, environment: str, replicas: int, timeout: float = 300) -> None:
    """Scale an environment's worker service and wait until that many workers joined its scheduler."""
    scale(f"dask-{environment}-worker", replicas)
    deadline = time.monotonic() + timeout
    while workers_joined(lab, environment) != replicas:
        if time.monotonic() > deadline:
            raise TimeoutError(f"dask-{environment}-worker did not settle at {replicas} workers")
        time.sleep(1)


def run_mapping(
    api: Api, environment: str, parameters: dict, job_variables: dict | None = None, timeout: float = 600
) -> Run:
    """Run the mapping flow's deployment of an environment on atd-data02 and wait for it; the run's
    `report` is its DASK_REPORT."""
    run = start(
        api, "dask-mapping", f"dask-mapping-{environment}-{LABEL}", environment, LABEL, parameters, job_variables
    )
    wait(api, [run], timeout=timeout)
    return run
