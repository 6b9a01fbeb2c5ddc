"""work_queue with the API faked."""

from __future__ import annotations

import pytest

from ansible_collections.prefect_fleet.prefect.plugins.modules import work_queue

POOL = ("GET", "/work_pools/production")
QUEUE = "/work_pools/production/queues/atd-data02"
ARGS = {"pool": "production", "name": "atd-data02"}


def test_a_missing_queue_is_created(prefect, run_module):
    prefect.route(*POOL, (200, {"name": "production"}))
    prefect.route("POST", "/work_pools/production/queues", lambda body: (201, body))
    result = run_module(work_queue, {**ARGS, "priority": 2})
    assert result["changed"] is True
    assert prefect.writes() == [("POST", "/work_pools/production/queues", {"name": "atd-data02", "priority": 2})]


def test_an_equal_queue_is_left_alone(prefect, run_module):
    prefect.route(*POOL, (200, {"name": "production"}))
    prefect.route("GET", QUEUE, (200, {"name": "atd-data02", "priority": 2, "is_paused": False}))
    assert run_module(work_queue, {**ARGS, "priority": 2, "paused": False})["changed"] is False
    assert prefect.writes() == []


def test_pausing_patches_is_paused(prefect, run_module):
    prefect.route(*POOL, (200, {"name": "production"}))
    prefect.route("GET", QUEUE, (200, {"name": "atd-data02", "is_paused": False}))
    prefect.route("PATCH", QUEUE, (204, None))
    result = run_module(work_queue, {**ARGS, "paused": True}, diff=True)
    assert result["diff"] == {"before": {"is_paused": False}, "after": {"is_paused": True}}
    assert prefect.writes() == [("PATCH", QUEUE, {"is_paused": True})]


def test_a_queue_in_a_missing_pool_is_an_error_unless_absent(prefect, run_module):
    result = run_module(work_queue, ARGS)
    assert result["failed"] is True
    assert "work pool production does not exist" in result["msg"]
    assert run_module(work_queue, {**ARGS, "state": "absent"})["changed"] is False
    assert prefect.writes() == []


def test_names_are_quoted_in_paths(prefect, run_module):
    prefect.route("GET", "/work_pools/a%2Fb", (200, {"name": "a/b"}))
    prefect.route("GET", "/work_pools/a%2Fb/queues/x%20y", (200, {"name": "x y"}))
    assert run_module(work_queue, {"pool": "a/b", "name": "x y"})["changed"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"priority": 0}, "priority must be 1 or more"),
        ({"concurrency_limit": -2}, "concurrency_limit must be 0 or more"),
    ],
    ids=["priority", "limit"],
)
def test_bad_numbers_fail_before_any_call(prefect, run_module, args, message):
    result = run_module(work_queue, {**ARGS, **args})
    assert result["failed"] is True
    assert message in result["msg"]
    assert prefect.calls == []
