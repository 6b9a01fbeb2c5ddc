"""deployment with the API faked."""

from __future__ import annotations

from ansible_collections.prefect_fleet.prefect.plugins.modules import deployment

NAME = "/deployments/name/fleet-report/fleet-report-production-atd-data02"
ARGS = {
    "flow": "fleet-report",
    "name": "fleet-report-production-atd-data02",
    "work_pool": "production",
    "work_queue": "atd-data02",
    "entrypoint": "fleet_report/report.py:fleet_report",
    "directory": "/opt/prefect/production/current/flows",
    "parameters": {"note": "x"},
    "tags": ["production", "atd-data02"],
}
STEP = {"prefect.deployments.steps.set_working_directory": {"directory": "/opt/prefect/production/current/flows"}}


def existing(**fields) -> dict:
    found = {
        "id": "d-1",
        "work_pool_name": "production",
        "work_queue_name": "atd-data02",
        "entrypoint": "fleet_report/report.py:fleet_report",
        "path": "/opt/prefect/production/current/flows",
        "pull_steps": [STEP],
        "parameters": {"note": "x"},
        "job_variables": {},
        "tags": ["atd-data02", "production"],
        "description": None,
        "paused": False,
        "enforce_parameter_schema": False,
        "schedules": [],
    }
    found.update(fields)
    return found


def test_a_new_deployment_creates_its_flow_then_itself_with_a_working_directory_step(prefect, run_module):
    prefect.route("GET", "/work_pools/production", (200, {"name": "production"}))
    prefect.route("POST", "/flows/", (200, {"id": "f-1", "name": "fleet-report"}))
    prefect.route("POST", "/deployments/", lambda body: (201, {"id": "d-1", **body}))
    result = run_module(deployment, {**ARGS, "cron": "*/5 * * * *"})
    assert result["changed"] is True
    flow_call, deployment_call = prefect.writes()
    assert flow_call == ("POST", "/flows/", {"name": "fleet-report"})
    assert deployment_call[:2] == ("POST", "/deployments/")
    body = deployment_call[2]
    assert body["flow_id"] == "f-1"
    assert body["pull_steps"] == [STEP]
    assert body["tags"] == ["atd-data02", "production"]
    assert body["schedules"] == [
        {"slug": "fleet-cron", "schedule": {"cron": "*/5 * * * *", "timezone": "UTC"}, "active": True}
    ]


def test_an_equal_deployment_is_left_alone(prefect, run_module):
    prefect.route("GET", NAME, (200, existing()))
    prefect.route("GET", "/work_pools/production", (200, {"name": "production"}))
    assert run_module(deployment, ARGS)["changed"] is False
    assert prefect.writes() == []


def test_changed_parameters_are_patched_by_id(prefect, run_module):
    prefect.route("GET", NAME, (200, existing()))
    prefect.route("GET", "/work_pools/production", (200, {"name": "production"}))
    prefect.route("PATCH", "/deployments/d-1", (204, None))
    result = run_module(deployment, {**ARGS, "parameters": {"note": "y"}}, diff=True)
    assert result["diff"] == {"before": {"parameters": {"note": "x"}}, "after": {"parameters": {"note": "y"}}}
    assert prefect.writes() == [("PATCH", "/deployments/d-1", {"parameters": {"note": "y"}})]


def test_a_missing_pool_is_a_clear_error(prefect, run_module):
    result = run_module(deployment, ARGS)
    assert result["failed"] is True
    assert "work pool production does not exist" in result["msg"]
    assert prefect.writes() == []


def test_a_malformed_entrypoint_fails_before_any_call(prefect, run_module):
    result = run_module(deployment, {**ARGS, "entrypoint": "report.py"})
    assert result["failed"] is True
    assert "entrypoint must read path/to/file.py:function" in result["msg"]
    assert prefect.calls == []


def test_absent_deletes_by_id(prefect, run_module):
    prefect.route("GET", NAME, (200, existing()))
    prefect.route("DELETE", "/deployments/d-1", (204, None))
    result = run_module(deployment, {"flow": "fleet-report", "name": ARGS["name"], "state": "absent"})
    assert result["changed"] is True
    assert prefect.writes() == [("DELETE", "/deployments/d-1", None)]
