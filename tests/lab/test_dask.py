"""Dask on the lab's swarm: the example mapping flow runs every task on the environment's cluster,
falls back to an in-process cluster without a scheduler address, and keeps running while a change
of the flows' requirements rolls the cluster's workers to a new image. (The fleet status's Dask
section is tested with the rest of the status, in test_operations.)"""

from __future__ import annotations

import subprocess
import threading
import time

import pytest

from lab import dask
from lab.ansible import playbook
from lab.fleet import Api
from lab.inventory import ROOT

ENVIRONMENT = "production"


@pytest.fixture(scope="module")
def api(lab) -> Api:
    return lab.api


def dashboard(lab, environment: str = ENVIRONMENT) -> dask.Dashboard:
    return dask.dashboard(lab, environment)


def service_image(service: str) -> str:
    return inspect(service, "{{.Spec.TaskTemplate.ContainerSpec.Image}}")


def inspect(service: str, template: str) -> str:
    return subprocess.run(
        ["docker", "service", "inspect", service, "--format", template], capture_output=True, text=True, check=True
    ).stdout.strip()


def last_update(service: str) -> tuple[int, int]:
    """When Swarm's last update of a service started and completed (Unix ns)."""
    started, completed = inspect(
        service, "{{.UpdateStatus.StartedAt.UnixNano}} {{.UpdateStatus.CompletedAt.UnixNano}}"
    ).split()
    return int(started), int(completed)


def run_mapping(api: Api, parameters: dict, job_variables: dict | None = None, timeout: float = 600) -> dict:
    run = dask.run_mapping(api, ENVIRONMENT, parameters, job_variables, timeout)
    assert run.state == "COMPLETED", f"{run.id} ended {run.state}"
    assert run.report, f"{run.id} logged no DASK_REPORT"
    return run.report


def test_a_production_flow_runs_all_200_tasks_on_the_swarm(lab, api):
    workers = dashboard(lab).json("/json/identity.json")["workers"]
    report = run_mapping(api, {"tasks": 200})
    assert report["host"] == "atd-data02"
    assert report["environment"] == ENVIRONMENT
    # The flow, and its tasks' code sent with it, came from the production branch's checkout.
    assert report["commit"] == lab.branch_heads()["production"]
    assert report["scheduler"] == lab.server["fleet_dask_scheduler_addresses"][ENVIRONMENT]
    assert report["tasks"] == 200, report
    assert report["indexes"], report
    assert report["in_process"] == 0, report
    # Every task ran on a worker the production scheduler knows, in a worker container of its service.
    assert set(report["workers"]) <= set(workers), (report["workers"], sorted(workers))
    assert sum(report["workers"].values()) == 200
    assert all(h.startswith(f"dask-{ENVIRONMENT}-worker-") for h in report["task_hosts"]), report["task_hosts"]
    assert len(report["workers"]) >= 2, f"200 tasks used one worker of {len(workers)}: {report['workers']}"


def test_the_dashboard_answers(lab):
    for environment in lab.server["fleet_environments"]:
        with dashboard(lab, environment).open("/health") as response:
            assert response.read() == b"ok"
        with dashboard(lab, environment).open("/info/main/workers.html") as response:
            assert response.status == 200
            assert b"Worker" in response.read()


def test_without_a_scheduler_address_the_flow_runs_in_process(api):
    report = run_mapping(api, {"tasks": 200}, {"env": {"DASK_SCHEDULER_ADDRESS": ""}})
    assert report["scheduler"] == "in-process"
    assert report["tasks"] == 200, report
    assert report["indexes"], report
    assert report["in_process"] == 200, report
    assert report["task_hosts"] == ["atd-data02"]


def test_a_requirements_change_rolls_the_workers_while_a_flow_runs(lab, api, tmp_path):
    """The flows' requirements gain a package: re-running site.yml builds a new image and Swarm
    replaces the production workers one at a time while a mapping flow runs on them; the flow
    completes, its tasks ran on old and new workers, and the scheduler followed only afterwards."""
    worker_service, scheduler_service = f"dask-{ENVIRONMENT}-worker", f"dask-{ENVIRONMENT}-scheduler"
    before = service_image(worker_service)
    requirements = tmp_path / "requirements.txt"
    original = (ROOT / "flows" / "requirements.txt").read_text()
    # humanize is pinned in the constraints (Prefect uses it): the image can install it offline.
    requirements.write_text(original + "humanize\n")
    changed = ["-e", f"dask_swarm_requirements_file={requirements}"]
    try:
        # Build first (the Dask tier's own playbook, which site.yml imports), so that the roll
        # starts soon after the flow does.
        playbook(lab.inventory, "playbooks/dask.yml", "--tags", "dask_swarm_image", *changed)
        board = dashboard(lab)
        workers_before = set(board.json("/json/identity.json")["workers"])
        result: dict = {}

        def mapping() -> None:
            result["report"] = run_mapping(api, {"tasks": 600, "seconds": 1.0}, timeout=1200)

        flow = threading.Thread(target=mapping)
        flow.start()
        deadline = time.monotonic() + 300
        while board.json("/json/counts.json")["processing"] == 0:
            assert time.monotonic() < deadline, "the mapping flow never reached the cluster"
            time.sleep(1)
        converge = playbook(lab.inventory, "site.yml", "--tags", "dask_swarm", *changed)
        after = service_image(worker_service)
        assert after != before
        # The scheduler waited for the flow: by the end of the converge the flow was over.
        flow.join(timeout=1200)
        report = result["report"]
        waited = converge.stdout.split(f"Wait until the scheduler holds no task before it restarts ({ENVIRONMENT})", 1)[
            1
        ]
        assert "ok: [lab-swarm]" in waited.split("TASK [", 1)[0], "the scheduler's update did not wait for the flow"
        assert service_image(scheduler_service) == after
        # Every environment's cluster rolled at the same time, not one after the other.
        rolls = {cluster: last_update(f"dask-{cluster}-worker") for cluster in ("production", "staging")}
        assert rolls["staging"][0] < rolls["production"][1], rolls
        assert rolls["production"][0] < rolls["staging"][1], rolls
        assert report["tasks"] == 600, report
        assert report["indexes"], report
        assert report["in_process"] == 0, report
        assert set(report["workers"]) - workers_before, "no task ran on a new worker: the roll was not under the flow"
        assert set(report["workers"]) & workers_before, "no task ran on an old worker"
    finally:
        # The whole Dask tier, untagged: a whole run records its converge, so the next one skips it.
        playbook(lab.inventory, "playbooks/dask.yml")
    assert service_image(worker_service) == before
