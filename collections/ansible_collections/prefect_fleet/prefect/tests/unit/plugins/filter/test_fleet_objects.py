"""The filters behind the prefect_objects role, on recorded inputs."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.prefect_fleet.prefect.plugins.filter import fleet_objects as f

VALID = {
    "api_url": "http://atd-prefect-01:4200/api",
    "api_auth_string": "admin:s3cret",
    "api_key": "",
    "environments": {"production": {"branch": "production"}, "staging": {"branch": "main"}},
    "queues": [{"pool": "production", "name": "atd-data02"}, {"pool": "staging", "name": "etl"}],
    "secret_blocks": {"production": {"warehouse-token": "x"}},
    "notifications": [{"name": "ops", "url": "https://hooks.invalid/x", "states": ["Failed"]}],
    "flow_heartbeat_seconds": 30,
    "zombie_after_seconds": 90,
    "pending_timeout_seconds": 300,
    "crashed_run_retries": 1,
}


def test_work_queues_are_each_hosts_labels_in_each_of_its_pools_once():
    pairs = [
        (["production", "staging"], ["atd-data02", "etl"]),
        (["production", "staging"], ["etl"]),  # a label shared by two hosts
        (["staging"], ["gis"]),  # a host that runs staging only
    ]
    assert f.work_queues(pairs) == [
        {"pool": "production", "name": "atd-data02"},
        {"pool": "production", "name": "etl"},
        {"pool": "staging", "name": "atd-data02"},
        {"pool": "staging", "name": "etl"},
        {"pool": "staging", "name": "gis"},
    ]
    assert f.work_queues([]) == []


def test_secret_block_items_name_each_block_by_environment_and_keep_null_for_removal():
    items = f.secret_block_items({"staging": {"b": "2", "gone": None}, "production": {"a": "1"}})
    assert items == [
        {"block": "production-a", "value": "1"},
        {"block": "staging-b", "value": "2"},
        {"block": "staging-gone", "value": None},
    ]
    assert f.secret_block_items({"production": None}) == []
    with pytest.raises(AnsibleFilterError, match="must be a mapping"):
        f.secret_block_items(["production"])


def test_notification_items_fill_defaults_and_take_the_block_id_from_the_webhook_results():
    notifications = [
        {"name": "ops", "url": "https://x.invalid", "headers": {"X": "secret"}},
        {"name": "old", "state": "absent", "environments": ["staging"], "states": ["Completed"]},
    ]
    results = {"results": [{"item": notifications[0], "block": {"id": "b-1"}}, {"item": notifications[1]}]}
    items = f.notification_items(notifications, results)
    assert items == [
        {
            "name": "ops",
            "state": "present",
            "environments": ["production"],
            "states": ["Failed", "Crashed"],
            "block_id": "b-1",
        },
        {"name": "old", "state": "absent", "environments": ["staging"], "states": ["Completed"], "block_id": ""},
    ]
    # URL and headers (secrets) never reach the automations' loop.
    assert "secret" not in repr(items)
    # Run on its own (tags), before any webhook was made: no ids yet.
    assert f.notification_items(notifications[:1])[0]["block_id"] == ""


def test_valid_settings_have_no_problem():
    assert f.objects_problems(VALID) == []
    assert f.objects_problems({**VALID, "api_auth_string": "", "api_key": "pnu_x", "notifications": []}) == []
    # Ansible's native types may hand numbers over as strings.
    assert f.objects_problems({**VALID, "zombie_after_seconds": "60", "flow_heartbeat_seconds": "30"}) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"queues": [{"pool": "qa", "name": "x"}]}, "queues name pools that are not environments: qa"),
        ({"queues": [{"pool": "staging", "name": "A B"}]}, "must be valid queue names; not: A B"),
        ({"api_url": "atd-prefect-01:4200"}, "must be an http(s) URL of the Prefect API, got 'atd-prefect-01:4200'"),
        ({"api_auth_string": "nocolon"}, "must be empty or 'user:password'"),
        ({"api_key": "pnu_x"}, "prefect_objects_api_key (Prefect Cloud) excludes prefect_objects_api_auth_string"),
        ({"zombie_after_seconds": 59}, "at least twice prefect_objects_flow_heartbeat_seconds (60), got 59"),
        ({"pending_timeout_seconds": 59}, "prefect_objects_pending_timeout_seconds must be at least 60, got 59"),
        ({"crashed_run_retries": 11}, "prefect_objects_crashed_run_retries must be 0 to 10, got 11"),
        (
            {"secret_blocks": ["x"]},
            "prefect_objects_secret_blocks must map environments to {name: value}; not a mapping",
        ),
        ({"secret_blocks": {"qa": {"t": "x"}}}, "these are not environments: qa"),
        (
            {"secret_blocks": {"staging": {"T_1": "x"}}},
            "valid Prefect block names (lower-case letters, digits and dashes); these are not: T_1",
        ),
        ({"notifications": [{"url": "https://x.invalid"}]}, "these do not: #1"),
        ({"notifications": [{"name": "ops", "url": "ftp://x"}]}, "these do not: ops"),
        ({"notifications": [{"name": "ops", "url": "https://x.invalid", "environments": ["qa"]}]}, "not: qa"),
    ],
    ids=lambda v: next(iter(v)) if isinstance(v, dict) else None,
)
def test_each_broken_rule_is_one_message_naming_it(change, message):
    problems = f.objects_problems({**VALID, **change})
    assert len(problems) == 1, problems
    assert message in problems[0]


def test_environments_are_named_first_then_what_refers_to_them():
    problems = f.objects_problems({**VALID, "environments": {}})
    assert problems[0] == "prefect_objects_environments (fleet_environments) must name at least one environment."
    assert "queues name pools that are not environments: production, staging" in problems[1]
    problems = f.objects_problems({**VALID, "environments": {"Prod": {}}})
    assert "valid pool names (lower-case letters, digits and '-', at most 63); these are not: Prod" in problems[0]


def test_a_notification_being_removed_needs_no_url():
    assert f.objects_problems({**VALID, "notifications": [{"name": "old", "state": "absent"}]}) == []


def test_the_filters_are_registered_under_their_names():
    assert set(f.FilterModule().filters()) == {
        "work_queues",
        "secret_block_items",
        "notification_items",
        "objects_problems",
    }
