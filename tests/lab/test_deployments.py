"""End to end on the lab: each environment registers the deployments of its own branch by itself.

A flow pushed to `main` becomes a staging deployment with no controller command, and runs on the
host its label names, from the staging checkout of that commit; production has no such deployment
until the change reaches the `production` branch; removed from `main`, its staging deployment
goes. A wrong spec arriving by push changes nothing and is named in the sync's log, in the fleet
status and by playbooks/deploy_flows.yml. playbooks/sync.yml moves every checkout and registers
the deployments before it returns.
"""

from __future__ import annotations

import secrets
import time

import pytest

from lab.ansible import playbook, recaps
from lab.fleet import checkout_head, deploy_state, deployer, deployment, settle, wait_for, wait_for_checkouts, workers
from lab.flowruns import describe, start, wait
from lab.repo import cherry_pick, push, remove
from prefect_fleet_host.layout import Layout

pytestmark = pytest.mark.lab

LABEL = "atd-data03"
FLOW = '''"""A flow pushed by tests/lab/test_deployments.py."""

import json
import os
import socket
import subprocess

from prefect import flow, get_run_logger


@flow(name="{flow}")
def pushed(note: str = "") -> dict:
    commit = subprocess.run(
        ["git", "-c", "safe.directory=*", "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    report = {{"host": socket.gethostname(), "cwd": os.getcwd(), "commit": commit, "note": note}}
    get_run_logger().info("FLEET_REPORT %s", json.dumps(report))
    return report
'''


@pytest.fixture(scope="module")
def api(lab):
    return lab.api


def test_a_flow_pushed_to_main_is_staging_only_until_it_reaches_production_and_goes_when_removed(lab, api, tmp_path):
    nonce = secrets.token_hex(3)
    name, flow, path = f"pushed-{nonce}", f"pushed-flow-{nonce}", f"flows/pushed/pushed_{nonce}.py"
    entry = f"  - name: {name}\n    entrypoint: pushed/pushed_{nonce}.py:pushed\n    labels: [{LABEL}]\n"
    staging, production = f"{name}-staging-{LABEL}", f"{name}-production-{LABEL}"
    bound = 3 * int(lab.server["prefect_worker_sync_interval"]) + 60  # an outage, far above any sync

    on_main = push(
        lab, tmp_path, "main", f"Add {flow}", files={path: FLOW.format(flow=flow), "flows/deployments.yml": entry}
    )
    found, seconds = wait_for(
        lambda: (d := deployment(api, flow, staging)) and d["version"] == on_main and d,
        bound,
        f"staging deployment {staging} at {on_main[:12]}",
    )
    print(f"push to main -> staging deployment registered in {seconds:.1f} s, by the sync alone")
    assert (found["work_pool_name"], found["work_queue_name"]) == ("staging", LABEL)
    assert deployment(api, flow, production) is None, "main's new flow must not be a production deployment"
    # Its run: on the label's host, from the staging checkout of the pushed commit, once that host
    # has it (it may lag the registering host by a sync interval: docs/deployments.md).
    wait_for_checkouts(lab, "staging", on_main, bound)
    (ran,) = wait(api, [start(api, flow, staging, "staging", LABEL, {"note": "from main"})], timeout=180)
    assert ran.state == "COMPLETED", describe(lab, ran)
    assert (ran.report["host"], ran.report["commit"]) == (LABEL, on_main)
    assert Layout.of("/opt/prefect/staging").commit_of(ran.report["cwd"]) == on_main
    # The other staging deployments were registered from the same commit; production's were not.
    others = {d["name"]: d["version"] for d in api.call("POST", "/deployments/filter", {"limit": 200})}
    assert others["fleet-report-staging-atd-data02"] == on_main
    assert others["fleet-report-production-atd-data02"] != on_main
    assert deploy_state(lab, "staging")["created"] == [staging]

    # Merged into production: a production deployment, from production's own commit.
    on_production = cherry_pick(lab, tmp_path, on_main, "main", "production")
    wait_for(
        lambda: (d := deployment(api, flow, production)) and d["version"] == on_production,
        bound,
        f"production deployment {production} at {on_production[:12]}",
    )
    wait_for_checkouts(lab, "production", on_production, bound)
    (ran,) = wait(api, [start(api, flow, production, "production", LABEL)], timeout=180)
    assert ran.state == "COMPLETED", describe(lab, ran)
    assert (ran.report["host"], ran.report["commit"]) == (LABEL, on_production)

    # Removed from main: its staging deployment goes; production's stays until production drops it.
    removed = remove(lab, tmp_path, "main", name, path)
    wait_for(lambda: deployment(api, flow, staging) is None, bound, f"{staging} removed after {removed[:12]}")
    assert deploy_state(lab, "staging")["removed"] == [staging]
    assert deployment(api, flow, production) is not None
    dropped = remove(lab, tmp_path, "production", name, path)
    wait_for(lambda: deployment(api, flow, production) is None, bound, f"{production} removed")
    settle(lab, "staging", removed)
    settle(lab, "production", dropped)


def test_a_wrong_spec_pushed_changes_nothing_and_is_named_in_the_sync_log_the_status_and_deploy_flows(
    lab, api, tmp_path
):
    host = deployer(lab)
    before = {
        d["name"]: (d["version"], d["entrypoint"], d["paused"], d["parameters"])
        for d in api.call("POST", "/deployments/filter", {"limit": 200})
    }
    bad = (
        "  - name: broken\n    entrypoint: nowhere/gone.py:main\n    labels: [atd-data09]\n    colour: red\n"
        "    schedules:\n      - cron: '61 * * * *'\n"
        # What the branch is not given: another command for its runs, a schedule turned on.
        "  - name: overreach\n    entrypoint: fleet_report/report.py:fleet_report\n    labels: [etl]\n"
        "    work_pool: {job_variables: {command: 'cat /etc/prefect-worker/production.env'}}\n"
        "    schedules:\n      - interval: 600\n        active: true\n"
    )
    commit = push(lab, tmp_path, "main", "A wrong spec", files={"flows/deployments.yml": bad})
    try:
        state, _ = wait_for(
            lambda: (s := deploy_state(lab, "staging")).get("commit") == commit and s,
            3 * int(lab.server["prefect_worker_sync_interval"]) + 60,
            "the registration of the wrong spec",
        )
        assert (state["ok"], state["kind"]) == (False, "spec")
        errors = " | ".join(state["errors"])
        for message in (
            "deployment 'broken': unknown field 'colour'",
            "entrypoint 'nowhere/gone.py:main': flows/nowhere/gone.py does not exist in this commit",
            "labels atd-data09 are carried by no worker host",
            "schedule #1: cron '61 * * * *': Invalid cron string",
            "deployment 'overreach': work_pool.job_variables.command is the fleet's to set in staging",
            "deployment 'overreach', schedule #1: active, in staging whose schedules the inventory keeps off",
        ):
            assert message in errors, errors
        # Nothing changed in the API.
        after = {
            d["name"]: (d["version"], d["entrypoint"], d["paused"], d["parameters"])
            for d in api.call("POST", "/deployments/filter", {"limit": 200})
        }
        assert after == before
        # Named in the sync's log: the hook prints it after the registrar wrote its state, and the
        # journal takes it in on its own time, so the test waits for the line (CI once read the
        # journal in between).
        line = f"deployments of {commit[:12]}: not registered, the spec is wrong:"

        def sync_log() -> str:
            text = lab.ssh(host, "journalctl -q -o cat -u prefect-git-sync@staging.service -n 40").stdout
            return text if line in text else ""

        journal, _ = wait_for(sync_log, 60, "the sync's log naming the wrong spec", interval=1)
        assert "unknown field 'colour'" in journal
        # ...in the fleet's status...
        status = playbook(lab.inventory, "playbooks/status.yml", check=False)
        assert status.returncode != 0
        flat = " ".join(status.stdout.split())
        assert f"{host}/staging: deployments of {commit[:12]} not registered, the spec is wrong:" in flat
        # ...and by the forced registration, which changes nothing either.
        forced = playbook(lab.inventory, "playbooks/deploy_flows.yml", check=False)
        assert forced.returncode != 0
        flat = " ".join(forced.stdout.split())
        assert f"staging: the deployments of commit {commit} were not registered (the spec is wrong)" in flat
        assert "labels atd-data09 are carried by no worker host" in flat
        after = {
            d["name"]: (d["version"], d["entrypoint"], d["paused"], d["parameters"])
            for d in api.call("POST", "/deployments/filter", {"limit": 200})
        }
        assert after == before
    finally:
        fixed = remove(lab, tmp_path, "main", "broken")
    settle(lab, "staging", fixed)
    assert deploy_state(lab, "staging")["ok"]


def test_the_sync_playbook_moves_every_checkout_and_registers_before_it_returns(lab, api, tmp_path):
    hosts = workers(lab)
    for host in hosts:  # the timer off: only the playbook can move the checkouts
        lab.ssh(host, "systemctl stop prefect-git-sync@staging.timer")
    try:
        commit = push(lab, tmp_path, "main", "Synced by the playbook")
        started = time.monotonic()
        synced = playbook(lab.inventory, "playbooks/sync.yml", "-e", "branch=main", check=False)
        took = time.monotonic() - started
        assert synced.returncode == 0, synced.stdout[-3000:]
        assert {host: checkout_head(lab, host, "staging") for host in hosts} == dict.fromkeys(hosts, commit)
        assert deployment(api, "fleet-report", "fleet-report-staging-atd-data02")["version"] == commit
        print(
            f"playbooks/sync.yml: {len(hosts)} checkouts and the staging deployments at the new commit in {took:.1f} s"
        )
        # Nothing new to sync: the same playbook changes nothing.
        again = playbook(lab.inventory, "playbooks/sync.yml", "-e", "branch=main")
        assert {host: counters["changed"] for host, counters in recaps(again.stdout).items()} == dict.fromkeys(hosts, 0)
        # What it was asked to sync must exist.
        wrong = playbook(lab.inventory, "playbooks/sync.yml", "-e", "branch=nope", check=False)
        assert wrong.returncode != 0
        assert "follows branch nope (branches: production, main" in " ".join(wrong.stdout.split())
    finally:
        for host in hosts:
            lab.ssh(host, "systemctl start prefect-git-sync@staging.timer")
