"""End to end on the lab: restarts, upgrades and crashes lose no flow run; fleet status tells.

Load: runs of a 30 s flow (etl-report-production-etl with `seconds`), one every 2 s, routed in
turn to the queue `etl` (atd-data02 and atd-data03 share it) and to `atd-data04`, for the whole of
each operation. Every run must end Completed in one attempt with no Crashed state in its history
(the fleet's retry automation would otherwise hide a crash).
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab import ansible
from lab.ansible import playbook
from lab.fleet import Api, wait_for_checkouts, worker_process
from lab.inventory import ROOT, resolve
from lab.load import Load, OnlineSampler, parse_time, read_outcomes, unclean
from lab.repo import push

pytestmark = pytest.mark.lab

BIN = Path(sys.executable).parent
ENVIRONMENT = "production"
ETL_HOSTS = ["atd-data02", "atd-data03"]
QUEUES = ["etl", "atd-data04", "etl"]  # about five runs in flight per host
# A run whose process died is marked Crashed by the zombie automation: heartbeats every 30 s,
# none for 90 s, evaluated by the server's triggers service. Measured 81-84 s from kill -9 to
# Crashed; this bound is what the README states.
ZOMBIE_BOUND = 150


@pytest.fixture(scope="module")
def api(lab) -> Api:
    return lab.api


@pytest.fixture(scope="module")
def deployment_id(api) -> str:
    return api.call("GET", f"/deployments/name/fleet-report/etl-report-{ENVIRONMENT}-etl")["id"]


def started_at(lab, hosts: list[str], environment: str = ENVIRONMENT) -> dict[str, int]:
    """host -> when its worker unit last became active (monotonic µs, one clock for the lab)."""
    return {
        host: int(lab.ssh(host, f"systemctl show -P ActiveEnterTimestampMonotonic prefect-worker@{environment}").stdout)
        for host in hosts
    }


def label_hosts(lab) -> dict[str, list[str]]:
    return {
        group.removeprefix("label_").replace("_", "-"): hosts
        for group, hosts in lab.groups.items()
        if group.startswith("label_")
    }


def assert_restarted_one_after_another(before: dict[str, int], after: dict[str, int]) -> None:
    assert all(after[host] > before[host] for host in before), f"not every worker restarted: {before} -> {after}"
    times = sorted(after.values())
    # Serial: each host's worker came up after the previous host's was up and ONLINE (seconds).
    gaps = [(b - a) / 1e6 for a, b in itertools.pairwise(times)]
    assert all(gap >= 1.0 for gap in gaps), f"workers restarted together (gaps {gaps} s)"


def in_flight(lab, host: str, environment: str = ENVIRONMENT) -> list[list[str]]:
    out = lab.ssh(host, f"prefect-fleet runs {environment}").stdout
    return [line.split() for line in out.splitlines()]


def wait_for_in_flight(lab, host: str, run_ids: list[str], timeout: float = 60) -> None:
    """Until each of these runs is in flight on the host (a run left by an earlier test would not do:
    the drain would wait for that one, and ours could start only after the restart)."""
    assert run_ids, "no run was submitted"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = {run for _env, run, _pid in in_flight(lab, host)}
        if running >= set(run_ids):
            return
        time.sleep(1)
    raise AssertionError(f"{host}: {run_ids} not all in flight after {timeout} s")


def restarts_under_load(lab, api, deployment_id, health_sampler, tmp_path, every: float, requirements: bool) -> None:
    """Under one steady load: a rolling restart of every worker, a converge that changes every
    worker's settings, (with `requirements`) a push that changes the flows' requirements, and a
    server restart. Each step is checked for having happened; every run must end Completed once.

    The settings the converge changes are a line added by hand to each host's settings file, with
    the workers restarted onto it before the load: the converge puts the inventory's settings back
    and restarts every worker onto them, which also leaves the lab as the inventory wants it (a
    setting given on the converge's command line would need one more rolling converge to undo)."""

    hosts = lab.groups["prefect_workers"]
    settings = f"/etc/prefect-worker/{ENVIRONMENT}.env"
    mark = f"FLEET_TEST_MARK={time.time_ns()}"
    steps: list[str] = []
    for host in hosts:
        lab.ssh(host, f"echo {mark} >> {settings} && systemctl restart prefect-worker@{ENVIRONMENT}")
    assert all(mark in worker_environment(lab, host) for host in hosts)
    try:
        with (
            OnlineSampler(api, ENVIRONMENT, label_hosts(lab)) as online,
            Load(api, deployment_id, QUEUES, every=every) as load,
        ):
            time.sleep(10)  # runs in flight on every host before the first step

            before = started_at(lab, hosts)
            playbook(lab.inventory, "playbooks/rolling_restart.yml", "--limit", "prefect_workers")
            assert_restarted_one_after_another(before, started_at(lab, hosts))
            steps.append("rolling restart")

            before = started_at(lab, hosts)
            # The worker tier's own playbook, untagged: it records its converge, so that the next
            # one skips the hosts it left as the inventory wants them.
            playbook(lab.inventory, "playbooks/workers.yml")
            assert_restarted_one_after_another(before, started_at(lab, hosts))
            for host in hosts:
                assert "FLEET_TEST_MARK" not in lab.ssh(host, f"cat {settings}").stdout
                assert "FLEET_TEST_MARK" not in worker_environment(lab, host), f"{host}: restarted onto old settings"
            steps.append("converge with new settings")

            if requirements:
                venv = {h: lab.ssh(h, f"readlink /opt/prefect/{ENVIRONMENT}/venv").stdout.strip() for h in hosts}
                before = started_at(lab, hosts)
                commit = push(
                    lab,
                    tmp_path,
                    ENVIRONMENT,
                    "requirements change",
                    files={"flows/requirements.txt": f"# rebuilt {time.time_ns()}\n"},
                )
                wait_for_checkouts(lab, ENVIRONMENT, commit, timeout=300)
                deadline = time.monotonic() + 600
                while any(started_at(lab, [h])[h] == before[h] for h in hosts):
                    assert time.monotonic() < deadline, "a worker was not restarted onto its new venv"
                    time.sleep(2)
                after = {h: lab.ssh(h, f"readlink /opt/prefect/{ENVIRONMENT}/venv").stdout.strip() for h in hosts}
                assert all(after[h] != venv[h] for h in hosts), f"venvs not swapped: {venv} -> {after}"
                steps.append("push that changes the requirements")

            server_before = lab.ssh(
                "atd-prefect-01", "systemctl show -P ActiveEnterTimestampMonotonic prefect-server"
            ).stdout
            with health_sampler.planned_outage("server restart under load"):
                playbook(lab.inventory, "playbooks/rolling_restart.yml", "--limit", "prefect_server")
            assert (
                lab.ssh("atd-prefect-01", "systemctl show -P ActiveEnterTimestampMonotonic prefect-server").stdout
                != server_before
            )
            steps.append("server restart")
            time.sleep(10)
        outcomes = load.outcomes(timeout=600)
    finally:
        if "converge with new settings" not in steps:
            # Back to the inventory's settings when the test stopped before its converge did it.
            playbook(lab.inventory, "playbooks/workers.yml")
    # A run claimed by a worker killed in that instant, or by one too busy to start it within the
    # pending timeout, is put back in its queue by the fleet's automation: it never ran, so it is
    # counted, not failed (a second start would show as a run count of 2 and fail).
    requeued = sum("Rescheduled" in o.history for o in outcomes)
    print(
        f"{len(outcomes)} runs over: {', '.join(steps)}; {load.submit_errors} submissions retried; "
        f"{requeued} claimed, not started within the pending timeout and put back in their queue"
    )
    assert len(outcomes) >= 30
    assert unclean(outcomes) == []
    # ONLINE is read from the API: its samples stop while the server restarts (counted as gaps
    # only when the API answered without a worker of the label).
    assert online.samples > 30
    assert [gap for gap in online.gaps if "API:" not in gap] == []
    workers = api.call("POST", f"/work_pools/{ENVIRONMENT}/workers/filter", {"limit": 200})
    assert {f"{h}-{ENVIRONMENT}" for h in hosts} <= {w["name"] for w in workers if w["status"] == "ONLINE"}


def worker_environment(lab, host: str, environment: str = ENVIRONMENT) -> str:
    """The environment the running worker process of `host` was started with, a variable a line."""
    return "\n".join(worker_process(lab, host, environment, "environ"))


def test_restarts_converges_and_a_server_restart_under_load_lose_no_run(
    lab, api, deployment_id, health_sampler, tmp_path
):
    """In CI: one run every 4 s (about 8 in flight), which this 2-core lab sustains. The issue's
    load, one every 2 s, and the requirements push run in `make e2e-long` (next test)."""
    restarts_under_load(lab, api, deployment_id, health_sampler, tmp_path, every=4.0, requirements=False)


@pytest.mark.long
def test_the_same_at_a_run_every_2_s_and_with_a_requirements_push(lab, api, deployment_id, health_sampler, tmp_path):
    restarts_under_load(lab, api, deployment_id, health_sampler, tmp_path, every=2.0, requirements=True)


def test_limit_label_restarts_only_the_hosts_of_that_label(lab):
    hosts = lab.groups["prefect_workers"]
    before = started_at(lab, hosts)
    server_before = lab.ssh("atd-prefect-01", "systemctl show -P ActiveEnterTimestampMonotonic prefect-server").stdout
    playbook(lab.inventory, "playbooks/rolling_restart.yml", "--limit", "label_etl")
    after = started_at(lab, hosts)
    assert {h for h in hosts if after[h] != before[h]} == set(ETL_HOSTS)
    assert lab.ssh("atd-prefect-01", "systemctl show -P ActiveEnterTimestampMonotonic prefect-server").stdout == (
        server_before
    )


def wait_ready(lab, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if lab.get("/api/ready", auth=False)[0] == 200:
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"/api/ready did not answer 200 within {timeout} s"
        time.sleep(1)


def submit(api, deployment_id: str, queue: str, seconds: float, state: dict | None = None) -> str:
    body = {"parameters": {"seconds": seconds, "note": "operations test"}, "work_queue_name": queue}
    if state:
        body["state"] = state
    return api.call("POST", f"/deployments/{deployment_id}/create_flow_run", body)["id"]


def wait_running(api, run_ids: list[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while any(api.call("GET", f"/flow_runs/{r}")["state"]["type"] != "RUNNING" for r in run_ids):
        assert time.monotonic() < deadline, "runs did not all reach Running"
        time.sleep(0.5)


def first_state(api, run_id: str, name: str) -> float:
    """When the run first entered the state `name` (server time)."""
    states = api.call("GET", f"/flow_run_states/?flow_run_id={run_id}")
    stamps = [parse_time(s["timestamp"]) for s in states if s["name"] == name]
    assert stamps, f"{run_id[:8]} was never {name}: {[s['name'] for s in states]}"
    return min(stamps)


def test_kill_9_of_a_worker_or_of_a_run_leaves_no_run_running(lab, api, deployment_id):
    """kill -9 of the worker: back within 10 s, its runs finish Completed. kill -9 of a run under
    its worker: Crashed at once (the worker sees its child die). kill -9 of a run that a restart
    handed off: Crashed by the zombie automation within ZOMBIE_BOUND; crashed runs are then
    scheduled again by the retry automation and end Completed. A run that a worker claimed and
    never started (simulated: created Pending): put back in its queue after the pending timeout,
    never Crashed, and Completed in one attempt."""
    host = "atd-data04"
    pending_timeout = int(
        resolve(lab.inventory, ["prefect_objects_pending_timeout_seconds"])["prefect_objects_pending_timeout_seconds"]
    )
    never_started = submit(api, deployment_id, host, 5, state={"type": "PENDING", "name": "Pending"})
    created_never_started = time.time()

    survivors = [submit(api, deployment_id, host, 25) for _ in range(4)]
    wait_running(api, survivors)  # all four started: none is between claim and start
    main_pid = lab.ssh(host, f"systemctl show -P MainPID prefect-worker@{ENVIRONMENT}").stdout.strip()
    killed = time.monotonic()
    lab.ssh(host, f"kill -9 {main_pid}")
    while True:
        new_pid = lab.ssh(host, f"systemctl show -P MainPID prefect-worker@{ENVIRONMENT}").stdout.strip()
        if new_pid not in ("0", main_pid):
            break
        assert time.monotonic() - killed < 10, "the worker unit was not back within 10 s"
        time.sleep(0.2)

    handed_off = submit(api, deployment_id, host, 20)
    wait_running(api, [handed_off])
    lab.ssh(host, f"systemctl restart prefect-worker@{ENVIRONMENT}")  # hands it off
    time.sleep(2)
    pids = {run_id: pid for _env, run_id, pid in in_flight(lab, host)}
    lab.ssh(host, f"kill -9 {pids[handed_off]}")
    killed_handed_off = time.time()

    under_worker = submit(api, deployment_id, host, 20)
    wait_running(api, [under_worker])
    pids = {run_id: pid for _env, run_id, pid in in_flight(lab, host)}
    lab.ssh(host, f"kill -9 {pids[under_worker]}")
    killed_under_worker = time.time()

    # Crashed is not the end here: the retry automation schedules each crashed run again.
    ids = [(r, host) for r in [*survivors, handed_off, under_worker, never_started]]
    outcomes = {
        o.id: o
        for o in read_outcomes(
            api, ids, timeout=max(ZOMBIE_BOUND, pending_timeout + 30) + 120, final={"COMPLETED", "FAILED", "CANCELLED"}
        )
    }
    assert unclean([outcomes[r] for r in survivors]) == []
    for run_id, dead_at in ((handed_off, killed_handed_off), (under_worker, killed_under_worker)):
        run = outcomes[run_id]
        assert first_state(api, run_id, "Crashed") - dead_at <= ZOMBIE_BOUND, f"{run_id[:8]}: {run.history}"
        # ...and scheduled again by the fleet's automation, to Completed.
        assert run.state == "Completed", run.history
        assert run.run_count == 2, run.history
    run = outcomes[never_started]
    assert first_state(api, never_started, "Rescheduled") - created_never_started <= pending_timeout + 60, run.history
    assert unclean([run]) == [], "a run that never started must not count as crashed"


def test_a_drain_waits_for_the_runs_in_flight_and_a_timeout_reports_them(lab, api, deployment_id):
    host = "atd-data04"
    with Load(api, deployment_id, [host], every=60, seconds=20) as load:
        time.sleep(1)
    wait_for_in_flight(lab, host, [run for run, _queue in load.ids])
    playbook(lab.inventory, "playbooks/rolling_restart.yml", "--limit", host, "-e", "drain=true")
    (outcome,) = load.outcomes(timeout=60)
    assert unclean([outcome]) == []
    ended = api.call("GET", f"/flow_runs/{outcome.id}")["end_time"]
    # The worker restarted only after the run had ended (the restart's unit start is later).
    restarted = lab.ssh(host, f"systemctl show -P ActiveEnterTimestamp prefect-worker@{ENVIRONMENT}").stdout.strip()
    restarted_epoch = float(lab.ssh(host, f"date -d '{restarted}' +%s").stdout)
    assert restarted_epoch >= int(parse_time(ended)), (restarted, ended)

    # A drain that times out reports the runs and leaves the host serving.
    with Load(api, deployment_id, [host], every=60, seconds=40) as long_run:
        time.sleep(1)
    wait_for_in_flight(lab, host, [run for run, _queue in long_run.ids])
    result = playbook(
        lab.inventory,
        "playbooks/rolling_restart.yml",
        "--limit",
        host,
        "-e",
        "drain=true",
        "-e",
        "drain_timeout=5",
        check=False,
    )
    (run_id, _queue) = long_run.ids[0]
    assert result.returncode != 0
    assert "still run on atd-data04" in result.stdout
    assert run_id in result.stdout
    assert lab.ssh(host, f"systemctl is-active prefect-worker@{ENVIRONMENT}").stdout.strip() == "active"
    assert unclean(long_run.outcomes(timeout=90)) == []


def test_a_rolling_reboot_drains_reboots_and_brings_the_host_back(lab, api, deployment_id):
    host = "atd-data04"
    boot = lab.ssh(host, "ps -o lstart= -p 1").stdout
    with Load(api, deployment_id, [host], every=60, seconds=15) as load:
        time.sleep(1)
    wait_for_in_flight(lab, host, [run for run, _queue in load.ids])
    playbook(lab.inventory, "playbooks/rolling_restart.yml", "--limit", host, "-e", "reboot=true")
    assert lab.ssh(host, "ps -o lstart= -p 1").stdout != boot, "the host did not reboot"
    assert unclean(load.outcomes(timeout=60)) == []
    assert lab.ssh(host, f"systemctl is-active prefect-worker@{ENVIRONMENT}").stdout.strip() == "active"


def fleet_status(lab, *args: str) -> subprocess.CompletedProcess[str]:
    """`make status` as an operator runs it: the table (or --json), exit 2 when unhealthy."""
    return subprocess.run(
        [sys.executable, "tools/fleet-status.py", "-i", lab.inventory, *args],
        cwd=ROOT,
        env=ansible.environment(),
        capture_output=True,
        text=True,
        check=False,
    )


def test_fleet_status_is_healthy_then_names_a_stale_checkout_a_stopped_worker_a_down_scheduler_and_a_down_server(
    lab, tmp_path, health_sampler
):
    from lab.dask import scale, stop_scheduler

    started = time.monotonic()
    healthy = fleet_status(lab)
    print(f"make status took {time.monotonic() - started:.1f} s")
    assert healthy.returncode == 0, healthy.stdout[-4000:] + healthy.stderr[-4000:]
    # Only the table: no playbook output.
    assert "TASK [" not in healthy.stdout
    assert "PLAY RECAP" not in healthy.stdout
    assert healthy.stdout.splitlines()[-1] == "The fleet is healthy."
    assert "database postgresql" in healthy.stdout
    for environment in lab.server["fleet_environments"]:
        # Each environment's Dask cluster: scheduler up, every worker joined, the venv's versions match.
        assert re.search(rf"dask +{environment} +scheduler up +workers (\d+)/\1 .* versions match +ok", healthy.stdout)
    document = json.loads(fleet_status(lab, "--json").stdout)
    assert document["healthy"] is True
    assert {(row["host"], row["environment"]) for row in document["workers"]} == {
        (host, environment)
        for host in lab.groups["prefect_workers"]
        for environment in lab.server["fleet_environments"]
    }
    try:
        lab.ssh("atd-data03", f"systemctl stop prefect-git-sync@{ENVIRONMENT}.timer")
        push(lab, tmp_path, ENVIRONMENT, "left behind by atd-data03")
        lab.ssh("atd-data04", "systemctl stop prefect-worker@staging")
        stop_scheduler(lab, "staging")
        sick = fleet_status(lab)
        assert sick.returncode == 2, sick.stdout[-3000:] + sick.stderr[-3000:]
        assert "atd-data03/production: checkout stale (sync timer inactive" in sick.stdout
        assert "atd-data04/staging: worker inactive; /health no answer" in sick.stdout
        assert "dask staging: scheduler did not answer" in " ".join(sick.stdout.split())
        sick_document = json.loads(fleet_status(lab, "--json").stdout)
        assert sick_document["healthy"] is False
        assert any(p.startswith("atd-data04/staging: worker inactive") for p in sick_document["problems"])
        # The playbook itself fails too, for whoever runs it without the wrapper.
        assert playbook(lab.inventory, "playbooks/status.yml", check=False).returncode != 0
        with health_sampler.planned_outage("fleet status with the server stopped"):
            lab.ssh("atd-prefect-01", "systemctl stop prefect-server")
            down = fleet_status(lab)
            lab.ssh("atd-prefect-01", "systemctl start prefect-server")
            wait_ready(lab)
        assert down.returncode == 2
        assert "atd-prefect-01: server unit inactive" in down.stdout
        assert "the Prefect API did not answer the worker hosts" in down.stdout
    finally:
        lab.ssh("atd-data03", f"systemctl start prefect-git-sync@{ENVIRONMENT}.timer")
        lab.ssh("atd-data04", "systemctl start prefect-worker@staging")
        lab.ssh("atd-prefect-01", "systemctl start prefect-server")
        # The staging workers lost their scheduler and exit; Swarm starts them again and they join.
        scale("dask-staging-scheduler", 1)
        # Healthy again before the next test, even when this one failed half-way.
        deadline = time.monotonic() + 180
        while fleet_status(lab).returncode != 0:
            assert time.monotonic() < deadline, "the fleet did not become healthy again"
            time.sleep(5)


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("serial=0", "serial must be a positive number of hosts or a percentage (1%-100%), got '0'"),
        ("drain=perhaps", "drain must be true or false, got 'perhaps'"),
        ("drain_timeout=-5", "drain_timeout must be a positive number of seconds, got '-5'"),
    ],
)
def test_bad_options_of_the_rolling_restart_are_refused_before_any_restart(lab, option, message):
    hosts = lab.groups["prefect_workers"]
    before = started_at(lab, hosts)
    result = playbook(lab.inventory, "playbooks/rolling_restart.yml", "-e", option, check=False)
    assert result.returncode != 0
    assert message in result.stdout
    assert started_at(lab, hosts) == before
