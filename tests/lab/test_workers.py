"""End to end on the lab: labelled workers in git-pulling checkouts, flows routed by label.

Every assertion rests on what a flow run itself reported (its FLEET_REPORT: host, directory,
commit), on the checkouts as git sees them on the hosts, and on systemd's view of the units.
"""

from __future__ import annotations

import subprocess
from collections import Counter

import pytest

from lab.fleet import Api, checkout_head, wait_for, wait_for_checkouts, workers
from lab.flowruns import describe, start, wait
from lab.repo import push
from prefect_fleet_host.layout import Layout

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def api(lab) -> Api:
    return lab.api


def carrying(lab, label: str) -> set[str]:
    return set(lab.groups.get("label_" + label.replace("-", "_"), []))


def test_flows_run_in_their_environments_checkout_on_the_targeted_host(lab, api):
    heads = lab.branch_heads()
    assert heads["main"] != heads["production"], "the lab seeds main one commit ahead of production"
    runs = [
        start(api, "fleet-report", "fleet-report-production-atd-data02", "production", "atd-data02"),
        start(api, "fleet-report", "fleet-report-staging-atd-data02", "staging", "atd-data02"),
    ]
    wait(api, runs, timeout=180)
    for run, branch in zip(runs, ("production", "main"), strict=True):
        assert run.state == "COMPLETED", describe(lab, run)
        report = run.report
        assert report["host"] == "atd-data02"
        assert report["environment"] == run.environment
        assert Layout.of(f"/opt/prefect/{run.environment}").commit_of(report["cwd"]) == heads[branch]
        assert report["cwd"].endswith("/flows")
        assert report["commit"] == heads[branch]
        # One process per run: the pool's command, the environment's venv (not a supervisor's Python).
        assert report["python"] == f"/opt/prefect/{run.environment}/venv/bin/python"


def test_a_shared_label_spreads_its_runs_over_its_hosts_only(lab, api):
    runs = [start(api, "fleet-report", "etl-report-production-etl", "production", "etl") for _ in range(10)]
    wait(api, runs, timeout=300)
    for run in runs:
        assert run.state == "COMPLETED", describe(lab, run)
    hosts = Counter(run.report["host"] for run in runs)
    assert set(hosts) == carrying(lab, "etl"), f"runs by host: {dict(hosts)}"
    assert len(carrying(lab, "etl")) == 2
    assert set(workers(lab)) - carrying(lab, "etl"), "the lab needs a worker host without the label"


def test_a_push_reaches_every_production_checkout_and_no_staging_one(lab, tmp_path):
    staging_before = {host: checkout_head(lab, host, "staging") for host in workers(lab)}
    commit = push(lab, tmp_path, "production", "A change for production")
    interval = int(lab.server["prefect_worker_sync_interval"])
    elapsed = wait_for_checkouts(lab, "production", commit, timeout=interval + 10)
    print(f"propagated to {len(workers(lab))} production checkouts in {elapsed:.1f} s (interval {interval} s)")
    assert {host: checkout_head(lab, host, "staging") for host in workers(lab)} == staging_before


def test_an_unreachable_remote_keeps_the_checkout_and_fails_visibly(lab, api, tmp_path):
    host = "atd-data02"
    git_host = lab.groups["lab_git_remote"][0]
    network = lab.server["lab_state_dir"].rstrip("/").rsplit("/", 1)[1]
    container = f"{network}-{git_host}"
    unit = "prefect-git-sync@production.service"
    # The test reads the outcome of the sync it starts itself: the timer, which would start the
    # unit again between that start and the reads below, is stopped until the remote is back.
    lab.ssh(host, "systemctl stop prefect-git-sync@production.timer")
    subprocess.run(["docker", "network", "disconnect", network, container], check=True)
    try:
        # A sync the timer started before the disconnect may still succeed, and `systemctl start`
        # would join it: wait for it to end first. Any sync that starts from here on cannot reach
        # the remote.
        wait_for(
            lambda: (
                lab.ssh(host, f"systemctl show -p ActiveState --value {unit}").stdout.strip()
                not in ("activating", "deactivating")
            ),
            120,
            f"{unit} ending the sync it ran at the disconnect",
        )
        before = checkout_head(lab, host, "production")
        sync = lab.ssh(host, f"systemctl start {unit}", check=False)
        assert sync.returncode != 0
        assert lab.ssh(host, f"systemctl is-failed {unit}", check=False).stdout.strip() == "failed"
        journal = lab.ssh(host, f"journalctl -u {unit} -n 20 --no-pager").stdout
        assert "failed; keeping the current checkout" in journal
        assert checkout_head(lab, host, "production") == before
        # The worker still runs flows, from the last good checkout.
        run = start(api, "fleet-report", "fleet-report-production-atd-data02", "production", "atd-data02")
        wait(api, [run], timeout=120)
        assert run.state == "COMPLETED", describe(lab, run)
        assert (run.report["host"], run.report["commit"]) == (host, before)
    finally:
        address = lab.addresses[git_host]
        subprocess.run(["docker", "network", "connect", "--ip", address, network, container], check=True)
        lab.ssh(host, "systemctl start prefect-git-sync@production.timer")
    commit = push(lab, tmp_path, "production", "After the outage")
    wait_for_checkouts(lab, "production", commit, timeout=int(lab.server["prefect_worker_sync_interval"]) + 20)
    assert lab.ssh(host, f"systemctl is-failed {unit}", check=False).stdout.strip() != "failed"


def test_a_force_push_is_followed(lab, tmp_path):
    old = lab.branch_heads()["production"]
    commit = push(lab, tmp_path, "production", "History rewritten", force=True)
    assert commit != old
    wait_for_checkouts(lab, "production", commit, timeout=int(lab.server["prefect_worker_sync_interval"]) + 10)


def test_workers_answer_their_health_endpoints(lab):
    for host in workers(lab):
        for environment, settings in lab.server["fleet_environments"].items():
            port = settings["healthcheck_port"]
            probe = f"python3 -c \"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{port}/health').read().decode())\""
            assert "OK" in lab.ssh(host, probe).stdout, f"{host} {environment}"
            assert lab.ssh(host, f"systemctl is-active prefect-worker@{environment}.service").stdout.strip() == "active"
