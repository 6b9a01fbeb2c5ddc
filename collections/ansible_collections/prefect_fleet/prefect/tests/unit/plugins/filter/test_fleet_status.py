"""The fleet's health rules (fleet_status) and its table, on recorded reports of a lab fleet."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.prefect_fleet.prefect.plugins.filter import fleet_status as f

HEAD = "41719b3653621111111111111111111111111111"
OLD = "2cc1c13c7e312222222222222222222222222222"
# What the last worker host's `prefect-fleet status --dask` says of an environment's Dask client.
COMPARISON = {"cluster": "production", "address": "tcp://s:8786", "distributed": "2026.1.0", "differ": []}


def environment(**changes) -> dict:
    env = {
        "worker": "active",
        "timer": "active",
        "sync_result": "success",
        "sync_finished": 990,
        "health": 200,
        "commit": HEAD,
        "venv": "abc",
        "head": HEAD,
        "runs": ["r1"],
        "deploy": None,
    }
    env.update(changes)
    return env


def fleet() -> dict:
    """A healthy fleet as the status playbook gathers it."""
    return {
        "servers": [
            {
                "host": "atd-prefect-01",
                "database": "postgresql",
                "units": {"prefect-server.service": "active"},
                "ready": {"4200": 200},
            }
        ],
        "ha": [],
        "api": {
            "version": "3.8.8",
            "pools": {
                "production": {
                    "workers": [{"name": "atd-data02-production", "status": "ONLINE"}],
                    "queues": {"atd-data02": {"scheduled": 2}, "etl": {"scheduled": 1}},
                },
                "staging": {"workers": [{"name": "atd-data02-staging", "status": "ONLINE"}], "queues": {}},
            },
        },
        "workers": [
            {
                "host": "atd-data02",
                "labels": ["atd-data02", "etl"],
                "deploying": ["production"],
                "interval": 15,
                "report": {
                    "hostname": "atd-data02",
                    "uptime": 1000,
                    "environments": {
                        "production": environment(
                            deploy={"commit": HEAD, "ok": True},
                            dask=dict(COMPARISON),
                        ),
                        "staging": environment(),
                    },
                },
            }
        ],
        "dask": dask_readings(clusters=["production"]),
        "dask_expected": True,
    }


def test_a_healthy_fleet_is_healthy_and_its_rows_carry_what_was_read():
    status = f.fleet_status(fleet())
    assert status["healthy"] is True, status["problems"]
    production = status["workers"][0]
    assert (production["environment"], production["online"], production["scheduled"], production["running"]) == (
        "production",
        True,
        3,
        1,
    )
    assert production["deployed"] == HEAD
    assert status["workers"][1]["deployed"] is None  # staging is registered elsewhere
    assert status["dask"] == [
        {"cluster": "production", "scheduler": "up", "workers": "3/3", "tasks": 5, "versions": "match", "problems": []}
    ]
    assert status["servers"][0] == {
        "host": "atd-prefect-01",
        "unit": "prefect-server.service",
        "state": "active",
        "ready": 200,
        "version": "3.8.8",
        "database": "postgresql",
    }


def change(path: str, value) -> dict:
    data = fleet()
    target = data
    *parents, last = path.split(".")
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    target[last] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        ("workers.0.report.environments.staging.worker", "inactive", "atd-data02/staging: worker inactive"),
        ("workers.0.report.environments.staging.health", -1, "atd-data02/staging: /health no answer"),
        ("workers.0.report.environments.staging.health", 503, "/health 503"),
        ("workers.0.report.environments.staging.head", "", "branch head not readable from the remote"),
        ("api.pools.staging.workers", [], "atd-data02/staging: not ONLINE in the API"),
        (
            "servers.0.units",
            {"prefect-server.service": "inactive"},
            "atd-prefect-01: server unit inactive (prefect-server.service)",
        ),
        ("servers.0.ready", {"4200": -1}, "atd-prefect-01: /api/ready on port 4200 -1"),
        ("api", {"msg": "Connection refused"}, "the Prefect API did not answer the worker hosts: Connection refused"),
        ("dask", None, "the Dask clusters were not read"),
        (
            "workers.0.report.environments.production.dask.differ",
            ["dask scheduler=2026.2.0 (client 2026.1.0)"],
            "dask production: production versions differ: dask scheduler=2026.2.0 (client 2026.1.0)",
        ),
        ("workers.0.report", {}, "atd-data02/-: no report from the host"),
    ],
)
def test_each_rule_names_what_is_wrong(path, value, problem):
    status = f.fleet_status(change(path, value))
    assert status["healthy"] is False
    assert any(problem in p for p in status["problems"]), status["problems"]


def test_a_host_whose_status_command_failed_says_why():
    data = fleet()
    data["workers"][0].update(report={}, error="prefect-fleet: error: unrecognized arguments: --dask")
    assert f.fleet_status(data)["problems"] == [
        "atd-data02/-: no report from the host: prefect-fleet: error: unrecognized arguments: --dask"
    ]


def test_a_checkout_behind_is_stale_only_when_its_sync_is_not_keeping_up():
    behind = change("workers.0.report.environments.staging.commit", OLD)
    assert f.fleet_status(behind)["healthy"] is True  # the next tick catches up
    for key, value in (("timer", "inactive"), ("sync_result", "exit-code"), ("sync_finished", 900)):
        stale = copy.deepcopy(behind)
        stale["workers"][0]["report"]["environments"]["staging"][key] = value
        problems = f.fleet_status(stale)["problems"]
        assert any(p.startswith("atd-data02/staging: checkout stale (sync timer") for p in problems), (key, problems)


def test_a_stale_checkout_says_why_its_last_sync_failed():
    data = change("workers.0.report.environments.staging.commit", OLD)
    environment = data["workers"][0]["report"]["environments"]["staging"]
    reason = "commit 0123456789ab refused: flows/requirements.txt -> /etc/prefect-worker/staging.env leads out"
    environment.update(sync_result="exit-code", sync_error=reason)
    assert f.fleet_status(data)["problems"] == [
        f"atd-data02/staging: checkout stale (sync timer active, last sync exit-code): {reason}"
    ]
    # A record older than the sync that succeeded since says nothing (the sync removes it anyway).
    environment.update(sync_result="success", sync_finished=0)
    assert not any(reason in p for p in f.fleet_status(data)["problems"])


def test_a_failed_registration_names_its_commit_and_errors():
    data = change(
        "workers.0.report.environments.production.deploy",
        {"commit": HEAD, "ok": False, "kind": "spec", "errors": ["deployment 'x': unknown field 'colour'"]},
    )
    (problem,) = f.fleet_status(data)["problems"]
    assert problem == (
        f"atd-data02/production: deployments of {HEAD[:12]} not registered, the spec is wrong: "
        "deployment 'x': unknown field 'colour'"
    )
    never = change("workers.0.report.environments.production.deploy", None)
    assert "deployments never registered" in f.fleet_status(never)["problems"][0]


def test_the_load_balancer_names_replicas_that_are_not_up():
    data = fleet()
    data["ha"] = [
        {
            "host": "atd-lb-01",
            "kind": "lb",
            "unit": "haproxy.service",
            "state": "active",
            "replicas": {"a-4200": "UP", "b-4200": "DOWN"},
        },
        {"host": "atd-redis-01", "kind": "redis", "unit": "redis-server.service", "state": "failed", "replicas": {}},
    ]
    assert f.fleet_status(data)["problems"] == [
        "atd-lb-01: replica b-4200 DOWN",
        "atd-redis-01: redis-server.service failed",
    ]


# HAProxy's stats page as CSV, cut to the columns the readings use (the page has about 90).
STATS = """# pxname,svname,status
front_4200,FRONTEND,OPEN
local_4200,local,UP
local_4200,BACKEND,UP
front_4201,FRONTEND,OPEN
local_4201,local,DOWN
prefect_api,a-4200,UP
prefect_api,b-4200,MAINT
prefect_api,BACKEND,UP
stats,FRONTEND,OPEN
"""


def test_haproxy_readings_are_a_balancers_replicas_or_a_server_hosts_fronts():
    assert f.haproxy_readings(STATS, "prefect_api", []) == {"a-4200": "UP", "b-4200": "MAINT"}
    assert f.haproxy_readings(STATS, "", [4200, 4201, 4202]) == {
        "front_4200": "UP",
        "front_4201": "DOWN",
        "front_4202": "?",
    }
    assert f.haproxy_readings("", "", [4200]) == {"front_4200": "?"}


def test_a_server_hosts_tls_front_whose_api_process_is_down_is_named():
    data = fleet()
    data["ha"] = [
        {"host": "atd-prefect-01", "kind": "front", "unit": "haproxy.service", "state": "active", "replicas": {}},
        {
            "host": "atd-prefect-02",
            "kind": "front",
            "unit": "haproxy.service",
            "state": "active",
            "replicas": {"front_4200": "DOWN"},
        },
    ]
    assert f.fleet_status(data)["problems"] == [
        "atd-prefect-01: no TLS front state from the stats page",
        "atd-prefect-02: TLS front front_4200 DOWN",
    ]


def test_the_table_shows_every_row_and_the_verdict():
    table = f.fleet_status_table(f.fleet_status(fleet())).splitlines()
    assert table[0].startswith("server   atd-prefect-01")
    assert "database postgresql" in table[0]
    assert table[1].startswith("dask     production")
    assert table[2].split()[:3] == ["host", "environment", "worker"]
    assert table[3].split()[:6] == ["atd-data02", "production", "active", "200", "True", HEAD[:12]]
    assert table[-1] == "The fleet is healthy."
    sick = f.fleet_status_table(f.fleet_status(change("workers.0.report.environments.staging.worker", "failed")))
    assert sick.splitlines()[-1].startswith("Unhealthy: atd-data02/staging: worker failed")


def test_the_clients_comparisons_are_read_from_the_worker_hosts_reports():
    assert f.client_versions(fleet()["workers"]) == [{"environment": "production", "host": "atd-data02", **COMPARISON}]
    assert f.client_versions([{"host": "atd-data03", "report": {}}]) == []


def test_the_filters_are_registered():
    assert set(f.FilterModule().filters()) == {
        "fleet_status",
        "fleet_status_table",
        "dask_cluster_status",
        "haproxy_readings",
    }


def dask_readings(**changes) -> dict:
    """What the dask_swarm role reads, as its tasks register it (trimmed to what is used)."""
    readings = {
        "clusters": ["production", "staging"],
        "counts": [
            {"item": {"key": "production"}, "status": 200, "json": {"workers": 3, "tasks": 5}},
            {"item": {"key": "staging"}, "status": 200, "json": {"workers": 1, "tasks": 0}},
        ],
        "workers": {"production": "dask-production-worker", "staging": "dask-staging-worker"},
        # docker_swarm_info's verbose services, the schedulers' among them.
        "services": [
            {"Spec": {"Name": "dask-production-scheduler", "Mode": {"Replicated": {"Replicas": 1}}}},
            {"Spec": {"Name": "dask-production-worker", "Mode": {"Replicated": {"Replicas": 3}}}},
            {"Spec": {"Name": "dask-staging-worker", "Mode": {"Replicated": {"Replicas": 1}}}},
        ],
        "versions": [{"environment": "production", "host": "atd-data02", **COMPARISON}],
    }
    readings.update(changes)
    return readings


def test_dask_clusters_that_answer_with_every_worker_and_matching_versions_are_ok():
    rows = f.dask_cluster_status(dask_readings())
    assert rows == [
        {"cluster": "production", "scheduler": "up", "workers": "3/3", "tasks": 5, "versions": "match", "problems": []},
        {
            "cluster": "staging",
            "scheduler": "up",
            "workers": "1/1",
            "tasks": 0,
            "versions": "unchecked",
            "problems": [],
        },
    ]


def test_a_dask_scheduler_down_a_missing_worker_and_differing_versions_are_named():
    readings = dask_readings()
    readings["counts"][1] = {"item": {"key": "staging"}, "status": -1, "msg": "Connection refused"}
    readings["counts"][0]["json"]["workers"] = 2
    readings["versions"][0]["differ"] = ["distributed worker=2026.2.0 (client 2026.1.0)"]
    production, staging = f.dask_cluster_status(readings)
    assert production["problems"] == [
        "2 of 3 workers joined",
        "production versions differ: distributed worker=2026.2.0 (client 2026.1.0)",
    ]
    assert production["versions"] == "DIFFER"
    assert (staging["scheduler"], staging["workers"], staging["problems"]) == (
        "down",
        "?/1",
        ["scheduler did not answer (Connection refused)"],
    )
    failed_client = dask_readings()
    failed_client["versions"][0]["error"] = "No module named distributed"
    assert f.dask_cluster_status(failed_client)[0]["problems"] == [
        "production client on atd-data02: No module named distributed"
    ]


def test_the_version_check_of_a_scheduler_that_did_not_answer_leaves_the_versions_unchecked():
    readings = dask_readings()
    readings["counts"][0] = {"item": {"key": "production"}, "status": -1, "msg": "Connection refused"}
    readings["versions"][0]["error"] = "ConnectionRefusedError: [Errno 111] Connection refused"
    production = f.dask_cluster_status(readings)[0]
    assert (production["versions"], production["problems"]) == (
        "unchecked",
        ["scheduler did not answer (Connection refused)"],
    )


def test_a_cluster_whose_worker_service_is_missing_has_no_workers_asked_for():
    readings = dask_readings()
    readings["services"] = [s for s in readings["services"] if s["Spec"]["Name"] != "dask-staging-worker"]
    staging = f.dask_cluster_status(readings)[1]
    assert (staging["workers"], staging["problems"]) == ("1/0", ["1 of 0 workers joined"])
