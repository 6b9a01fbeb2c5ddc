"""Verify prefect_objects against a real server: each environment a process pool whose runs start
in its checkout, each label a queue, the flows' Secret block, a notification's Webhook block and
automation, the automations that keep runs from hanging; and bad input refused before any object
of the API changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.molecule_checks import HostApi, assert_rejected_without_change, other_messages

OBJECTS = Path(__file__).resolve().parent.parent / "objects.yml"


# The API as the server host sees it, with the credential from its 0600 settings file.
@pytest.fixture(scope="module")
def client(server) -> HostApi:
    return HostApi(server, env_file="/etc/prefect-server/server.env", url="http://127.0.0.1:4200/api")


@pytest.fixture(scope="module")
def api(client):
    """api(path) GETs, api(path, body) POSTs; returns the decoded answer."""
    return lambda path, body=None: client("GET" if body is None else "POST", path, body)


@pytest.fixture(scope="module")
def api_state(client) -> str:
    """A command printing a hash of the API's objects as the role makes them (pools, queues,
    blocks, automations, with their update times), for the bad-input checks to compare."""
    paths = (
        "/work_pools/filter",
        "/work_pools/production/queues/filter",
        "/block_documents/filter",
        "/automations/filter",
    )
    return "(" + "; ".join(client.command("POST", path, {}) for path in paths) + ") | sha256sum"


@pytest.mark.parametrize("environment", ["production", "staging"])
def test_each_environment_is_a_process_pool_started_in_its_checkout(api, environment):
    pool = api(f"/work_pools/{environment}")
    assert pool["type"] == "process"
    props = pool["base_job_template"]["variables"]["properties"]
    assert props["working_dir"]["default"] == f"/opt/prefect/{environment}/current/flows"
    assert props["stream_output"]["default"] is False
    assert props["command"]["default"] == f"/opt/prefect/{environment}/venv/bin/python -m prefect.engine"
    # The template is the process worker's own, with its placeholders intact.
    assert pool["base_job_template"]["job_configuration"]["command"] == "{{ command }}"


def test_each_label_is_a_queue_of_the_pools_it_was_given(api):
    queues = {
        pool: sorted(q["name"] for q in api(f"/work_pools/{pool}/queues/filter", {}) if q["name"] != "default")
        for pool in ("production", "staging")
    }
    assert queues == {"production": ["molecule-a", "molecule-shared"], "staging": ["molecule-shared"]}


def test_the_zombie_never_started_and_retry_automations_exist(api):
    automations = {a["name"]: a for a in api("/automations/filter", {})}
    zombie = automations["fleet: crash zombie flow runs"]
    assert zombie["enabled"] is True
    assert zombie["trigger"]["posture"] == "Proactive"
    assert zombie["trigger"]["within"] == 90
    assert zombie["actions"][0]["state"] == "CRASHED"
    never_started = automations["fleet: reschedule flow runs that never started"]
    assert never_started["trigger"]["after"] == ["prefect.flow-run.Pending"]
    assert never_started["trigger"]["within"] == 300
    assert (never_started["actions"][0]["state"], never_started["actions"][0]["name"]) == ("SCHEDULED", "Rescheduled")
    assert "fleet: crash flow runs that never started" not in automations
    retry = automations["fleet: retry crashed flow runs"]
    assert sorted(retry["trigger"]["match"]["prefect.run-count"]) == ["0", "1"]
    assert retry["actions"][0]["state"] == "SCHEDULED"


def test_the_secret_block_holds_the_vault_value(api):
    path = "/block_types/slug/secret/block_documents/name/production-warehouse-token"
    assert api(path + "?include_secrets=true")["data"] == {"value": "molecule-secret-0123456789"}
    assert "molecule-secret-0123456789" not in json.dumps(api(path))


def test_a_notification_is_a_webhook_block_and_an_automation_calling_it(api):
    block = api("/block_types/slug/webhook/block_documents/name/fleet-notify-molecule-hook?include_secrets=true")
    assert block["data"]["url"] == "http://127.0.0.1:9/hook"
    automation = next(a for a in api("/automations/filter", {}) if a["name"] == "fleet: notify molecule-hook")
    assert sorted(automation["trigger"]["expect"]) == ["prefect.flow-run.Crashed", "prefect.flow-run.Failed"]
    assert automation["trigger"]["match_related"]["prefect.resource.name"] == ["production"]
    assert automation["actions"][0]["block_document_id"] == block["id"]


# Bad input: objects.yml with one invalid variable must fail, naming it, before any object changes.
CASES = {
    "no-environments": ({"prefect_objects_environments": {}}, "must name at least one environment"),
    "environment-not-a-pool-name": (
        {"prefect_objects_environments": {"Prod_Env": {}}},
        "environment names must be valid pool names (lower-case letters, digits and '-', at most 63); these are not: Prod_Env",
    ),
    "queue-of-an-unknown-pool": (
        {"prefect_objects_queues": [{"pool": "qa", "name": "molecule-a"}]},
        "prefect_objects_queues: queues name pools that are not environments: qa",
    ),
    "label-not-a-queue-name": (
        {"prefect_objects_queues": [{"pool": "production", "name": "ATD data02"}]},
        "queue names (host labels) must be valid queue names; not: ATD data02",
    ),
    "api-url-not-a-url": (
        {"prefect_objects_api_url": "atd-prefect-01:4200"},
        "prefect_objects_api_url must be an http(s) URL of the Prefect API, got 'atd-prefect-01:4200'",
    ),
    "zombie-window-shorter-than-two-heartbeats": (
        {"prefect_objects_zombie_after_seconds": 45},
        "prefect_objects_zombie_after_seconds must be at least twice prefect_objects_flow_heartbeat_seconds (60), got 45",
    ),
    "pending-timeout-too-short": (
        {"prefect_objects_pending_timeout_seconds": 10},
        "prefect_objects_pending_timeout_seconds must be at least 60, got 10",
    ),
    "negative-crashed-run-retries": (
        {"prefect_objects_crashed_run_retries": -1},
        "prefect_objects_crashed_run_retries must be 0 to 10, got -1",
    ),
    "secret-name-not-a-block-name": (
        {"prefect_objects_secret_blocks": {"staging": {"Warehouse_Password": "x"}}},
        "secret names must be valid Prefect block names (lower-case letters, digits and dashes); these are not:"
        " Warehouse_Password",
    ),
    "secrets-of-an-unknown-environment": (
        {"prefect_objects_secret_blocks": {"qa": {"token": "x"}}},
        "prefect_objects_secret_blocks must map environments to {name: value}; these are not environments: qa",
    ),
    "notification-without-url": (
        {"prefect_objects_notifications": [{"name": "ops"}]},
        "each needs a name (lower-case letters, digits, dashes) and, unless its state is absent, an http(s) url;"
        " these do not: ops",
    ),
    "notification-of-an-unknown-state": (
        {"prefect_objects_notifications": [{"name": "ops", "url": "https://hooks.invalid/x", "states": ["Exploded"]}]},
        "states must be among Completed, Failed, Crashed, Cancelled, TimedOut and environments among production,"
        " staging; not: Exploded",
    ),
    "version-without-a-job-template": (
        {"prefect_objects_version": "3.0.99"},
        "prefect_objects_version 3.0.99 has no process worker job template in the role",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_invalid_input_fails_before_any_change(server, api_state, case):
    extra_vars, message = CASES[case]
    assert_rejected_without_change(server, OBJECTS, extra_vars, message, other_messages(CASES, case), state=api_state)
