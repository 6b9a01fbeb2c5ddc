"""Run the example flows' deployments on the lab and report where each run ran.

`python -m lab.flowruns [INVENTORY]` creates one flow run per deployment of flows/deployments.yml
in every environment and label, waits for each to finish, reads what the flow itself reported
(its FLEET_REPORT log line: host, directory, commit) and prints a table. The end-to-end tests use
the same functions.
"""

from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import yaml

from lab.fleet import Api, Lab
from lab.inventory import ROOT

FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
# What the example flows log about where they ran: flows/fleet_report and flows/dask_mapping.
REPORTS = ("FLEET_REPORT", "DASK_REPORT")


@dataclass
class Run:
    deployment: str
    environment: str
    label: str
    id: str
    state: str = "PENDING"
    report: dict | None = None
    # The final state's message (a Crashed run's cause, as Prefect recorded it).
    message: str | None = None


def describe(lab: Lab, run: Run) -> str:
    """A run that did not complete, told for a failing test: its state and message, its own log
    lines, and what its host's worker journaled while it ran (a run that crashed before its engine
    could log, e.g. on loading its flow or reaching the API, left its cause only there)."""
    api = lab.api_for(run.environment)
    found = api.call("GET", f"/flow_runs/{run.id}")
    lines = [f"{run.deployment} ({run.environment}, {run.label}) run {run.id}: {run.state}: {run.message}"]
    for _ in range(10):  # logs reach the API in batches, a moment after the final state
        logs = api.call("POST", "/logs/filter", {"logs": {"flow_run_id": {"any_": [run.id]}}, "sort": "TIMESTAMP_ASC"})
        if logs:
            break
        time.sleep(1)
    lines += ["its logs:", *(f"  {log['timestamp']} {log['level']} {log['message']}" for log in logs[-40:])]
    # The process worker records "host:pid"; a run that never started is named only by the worker
    # that submitted it ("<host>-<environment>", the fleet's worker names).
    host = (found.get("infrastructure_pid") or "").split(":")[0]
    submitters = (re.match(r"Worker '(.+)' submitting", log["message"]) for log in logs)
    host = host or next((m[1].removesuffix(f"-{run.environment}") for m in submitters if m), "")
    began = found.get("start_time") or found.get("expected_start_time")
    if host in lab.addresses and began:
        since = datetime.fromisoformat(began) - timedelta(seconds=5)
        until = datetime.fromisoformat(found.get("end_time") or began) + timedelta(seconds=5)
        journal = lab.ssh(
            host,
            f"journalctl -q -o short-precise -u prefect-worker@{run.environment} "
            f"--since @{since.timestamp():.0f} --until @{until.timestamp():.0f} | tail -n 60",
            check=False,
        )
        lines += [f"prefect-worker@{run.environment} on {host} meanwhile:", journal.stdout + journal.stderr]
    return "\n".join(lines)


def flow_name(entrypoint: str) -> str:
    """The flow's name, read from its @flow decorator as Prefect (and the fleet's registrar) reads it."""
    from prefect.flows import load_flow_arguments_from_entrypoint

    path, function = entrypoint.split(":")
    return load_flow_arguments_from_entrypoint(f"{ROOT / 'flows' / path}:{function}", arguments={"name"})["name"]


def targets(environments: dict) -> list[tuple[dict, str, str]]:
    """(deployment spec, environment, label) for every deployment an environment registers from a
    branch at this checkout's flows/deployments.yml (each spec gets its `flow`: the flow's name)."""
    spec = yaml.safe_load((ROOT / "flows" / "deployments.yml").read_text())["deployments"]
    spec = [dict(d, flow=flow_name(d["entrypoint"])) for d in spec]
    return [(d, env, label) for d in spec for env in environments for label in d["labels"]]


def start(
    api: Api,
    flow: str,
    deployment: str,
    environment: str,
    label: str,
    parameters: dict | None = None,
    job_variables: dict | None = None,
) -> Run:
    found = api.call("GET", f"/deployments/name/{flow}/{deployment}")
    body = {"parameters": parameters or {}, "job_variables": job_variables or {}}
    run = api.call("POST", f"/deployments/{found['id']}/create_flow_run", body)
    return Run(deployment, environment, label, run["id"])


def wait(api: Api, runs: list[Run], timeout: float = 300) -> list[Run]:
    """Wait until every run reached a final state (or the timeout); read each one's report."""
    deadline = time.monotonic() + timeout
    pending = list(runs)
    while pending and time.monotonic() < deadline:
        for run in list(pending):
            if run.state not in FINAL:
                state = api.call("GET", f"/flow_runs/{run.id}")["state"]
                run.state = state["type"] if state else "PENDING"
                run.message = state.get("message") if state else None
            if run.state in FINAL:
                # Logs reach the API in batches, a moment after the final state.
                run.report = report_of(api, run.id, REPORTS)
                if run.report or run.state != "COMPLETED":
                    pending.remove(run)
        if pending:
            time.sleep(1)
    return runs


def report_of(api: Api, run_id: str, marker: str | tuple[str, ...] = "FLEET_REPORT") -> dict | None:
    """The JSON a flow run logged after `marker` (or any of several), or None."""
    markers = (marker,) if isinstance(marker, str) else marker
    logs = api.call(
        "POST",
        "/logs/filter",
        {
            "logs": {"flow_run_id": {"any_": [run_id]}, "task_run_id": {"is_null_": True}},
            "limit": 200,
            "sort": "TIMESTAMP_DESC",
        },
    )
    for log in logs:
        if log["message"].startswith(tuple(m + " " for m in markers)):
            return json.loads(log["message"].split(" ", 1)[1])
    return None


def main(argv: list[str]) -> int:
    lab = Lab.of(argv[0] if argv else "inventories/lab")
    # Each environment's runs on its own server tier's API.
    runs = [
        start(lab.api_for(env), d["flow"], f"{d['name']}-{env}-{label}", env, label, d.get("parameters"))
        for d, env, label in targets(lab.server["fleet_environments"])
    ]
    # A bound for a stall only (it returns when the last run ends): tests/inventory brings its
    # fleet up with this, at a small share of the CPU beside the lab's tests. The environments'
    # runs go on together; each API's are waited for in turn.
    deadline = time.monotonic() + 900
    for environment in lab.server["fleet_environments"]:
        mine = [run for run in runs if run.environment == environment]
        wait(lab.api_for(environment), mine, timeout=max(1.0, deadline - time.monotonic()))
    rows = [("deployment", "environment", "label", "host", "commit", "state")]
    for run in runs:
        report = run.report or {}
        rows.append(
            (
                run.deployment,
                run.environment,
                run.label,
                report.get("host", "-"),
                report.get("commit", "-")[:12],
                run.state,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    return 0 if all(run.state == "COMPLETED" and run.report for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
