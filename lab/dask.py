"""The lab's Dask clusters, as the end-to-end tests and the benchmark reach them: the schedulers'
HTTP endpoints published on this machine, their worker services, and runs of the example mapping
flow (flows/dask_mapping) with the report each one logs."""

from __future__ import annotations

import json
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from lab.fleet import Api, Lab, wait_for
from lab.flowruns import Run, start, wait

LABEL = "atd-data02"


@dataclass(frozen=True)
class Dashboard:
    """An environment's scheduler dashboard as published on the lab's swarm (this machine): over
    TLS where its cluster speaks TLS, checked against that cluster's CA (Dask's certificates name
    no host)."""

    url: str
    context: ssl.SSLContext | None = None

    def open(self, path: str):
        return urllib.request.urlopen(self.url + path, timeout=10, context=self.context)

    def json(self, path: str) -> dict:
        with self.open(path) as response:
            return json.load(response)


def dashboard(lab: Lab, environment: str) -> Dashboard:
    clusters = lab.server["fleet_dask_clusters"]
    cluster = environment if environment in clusters else "shared"
    port = clusters[cluster]["dashboard_port"]
    if str(lab.server.get("fleet_dask_tls")).lower() != "true":
        return Dashboard(f"http://127.0.0.1:{port}")
    context = ssl.create_default_context(
        cafile=str(Path(lab.server["fleet_tls_ca_dir"]) / f"dask-{cluster}" / "ca.crt")
    )
    context.check_hostname = False
    return Dashboard(f"https://127.0.0.1:{port}", context)


def workers_joined(lab: Lab, environment: str) -> int:
    return dashboard(lab, environment).json("/json/counts.json")["workers"]


def scale(service: str, replicas: int) -> None:
    subprocess.run(["docker", "service", "scale", "--detach", f"{service}={replicas}"], check=True, capture_output=True)


def answers(board: Dashboard, path: str) -> bool:
    try:
        board.json(path)
    except OSError:
        return False
    return True


def stop_scheduler(lab: Lab, environment: str, timeout: float = 120) -> None:
    """Scale an environment's scheduler service to 0 and wait until its endpoint stops answering
    (`docker service scale` returns before Swarm has stopped the task)."""
    scale(f"dask-{environment}-scheduler", 0)
    board = dashboard(lab, environment)
    wait_for(
        lambda: not answers(board, "/json/counts.json"), timeout, f"dask-{environment}-scheduler stopping", interval=1
    )


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
