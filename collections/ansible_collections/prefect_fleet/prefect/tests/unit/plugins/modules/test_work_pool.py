"""work_pool with the API faked: what it sends, what it reports, and its errors."""

from __future__ import annotations

import pytest

from ansible_collections.prefect_fleet.prefect.plugins.modules import work_pool

TEMPLATE = {
    "job_configuration": {"command": "{{ command }}", "working_dir": "{{ working_dir }}"},
    "variables": {
        "properties": {
            "working_dir": {"type": "string", "default": None},
            "stream_output": {"type": "boolean", "default": True},
        }
    },
}


def existing(**fields) -> dict:
    pool = {"name": "production", "type": "process", "description": None, "concurrency_limit": None}
    pool["is_paused"] = False
    pool["base_job_template"] = work_pool.with_job_variables(TEMPLATE, {"working_dir": "/opt/prefect/production"})
    pool.update(fields)
    return pool


ARGS = {
    "name": "production",
    "base_job_template": TEMPLATE,
    "job_variables": {"working_dir": "/opt/prefect/production"},
}


def test_a_missing_pool_is_created_with_the_job_variables_as_defaults(prefect, run_module):
    prefect.route("POST", "/work_pools/", lambda body: (201, body))
    result = run_module(work_pool, ARGS)
    assert result["changed"] is True
    [(method, path, body)] = prefect.writes()
    assert (method, path) == ("POST", "/work_pools/")
    assert (body["name"], body["type"]) == ("production", "process")
    props = body["base_job_template"]["variables"]["properties"]
    assert props["working_dir"]["default"] == "/opt/prefect/production"
    assert props["stream_output"]["default"] is True, "variables not given keep the template's default"
    assert TEMPLATE["variables"]["properties"]["working_dir"]["default"] is None, "the given template is not mutated"


def test_an_equal_pool_is_left_alone(prefect, run_module):
    prefect.route("GET", "/work_pools/production", (200, existing()))
    result = run_module(work_pool, ARGS)
    assert result["changed"] is False
    assert prefect.writes() == []


def test_a_changed_field_is_patched_alone_and_shown_in_the_diff(prefect, run_module):
    prefect.route("GET", "/work_pools/production", (200, existing()))
    prefect.route("PATCH", "/work_pools/production", (204, None))
    result = run_module(work_pool, {**ARGS, "concurrency_limit": 3}, diff=True)
    assert result["changed"] is True
    assert result["diff"] == {"before": {"concurrency_limit": None}, "after": {"concurrency_limit": 3}}
    assert prefect.writes() == [("PATCH", "/work_pools/production", {"concurrency_limit": 3})]


def test_a_zero_concurrency_limit_means_no_limit(prefect, run_module):
    prefect.route("GET", "/work_pools/production", (200, existing(concurrency_limit=2)))
    prefect.route("PATCH", "/work_pools/production", (204, None))
    run_module(work_pool, {**ARGS, "concurrency_limit": 0})
    assert prefect.writes() == [("PATCH", "/work_pools/production", {"concurrency_limit": None})]


def test_check_mode_reports_the_change_and_writes_nothing(prefect, run_module):
    result = run_module(work_pool, ARGS, check_mode=True, diff=True)
    assert result["changed"] is True
    assert result["diff"]["before"] == {}
    assert prefect.writes() == []


def test_a_pool_created_meanwhile_by_another_client_is_compared_not_failed(prefect, run_module):
    prefect.route("GET", "/work_pools/production", [(404, {"detail": "no"}), (200, existing())])
    prefect.route("POST", "/work_pools/", (409, {"detail": "exists"}))
    result = run_module(work_pool, ARGS)
    assert result["failed"] is False
    assert result["changed"] is False


def test_absent_deletes_an_existing_pool_and_ignores_a_missing_one(prefect, run_module):
    prefect.route("GET", "/work_pools/production", (200, existing()))
    prefect.route("DELETE", "/work_pools/production", (204, None))
    assert run_module(work_pool, {"name": "production", "state": "absent"})["changed"] is True
    assert prefect.writes() == [("DELETE", "/work_pools/production", None)]
    prefect.routes.clear()
    assert run_module(work_pool, {"name": "production", "state": "absent"})["changed"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"type": "docker"}, "a pool's type cannot change"),
        ({"concurrency_limit": -1}, "concurrency_limit must be 0 (no limit) or more"),
        ({"job_variables": {"no_such": 1}}, "job_variables no_such are not variables of the base job template"),
    ],
    ids=["type-change", "negative-limit", "unknown-job-variable"],
)
def test_bad_input_fails_without_writing(prefect, run_module, args, message):
    prefect.route("GET", "/work_pools/production", (200, existing()))
    result = run_module(work_pool, {**ARGS, **args})
    assert result["failed"] is True
    assert message in result["msg"]
    assert prefect.writes() == []


@pytest.mark.usefixtures("prefect")
def test_job_variables_without_any_template_is_a_clear_error(run_module):
    result = run_module(work_pool, {"name": "production", "job_variables": {"working_dir": "/x"}})
    assert result["failed"] is True
    assert "job_variables needs base_job_template" in result["msg"]


def queues(*names: str) -> list[dict]:
    return [{"name": name, "priority": index + 1} for index, name in enumerate(names)]


def test_the_missing_queues_are_created_from_one_listing(prefect, run_module):
    prefect.route("GET", "/work_pools/production", (200, existing()))
    prefect.route("POST", "/work_pools/production/queues/filter", (200, queues("default", "etl")))
    prefect.route("POST", "/work_pools/production/queues", lambda body: (201, body))
    result = run_module(work_pool, {**ARGS, "queues": ["etl", "atd-data02", "etl"]})
    assert result["changed"] is True
    assert result["queues_created"] == ["atd-data02"]
    assert prefect.writes() == [
        ("POST", "/work_pools/production/queues/filter", {"limit": 200, "offset": 0}),
        ("POST", "/work_pools/production/queues", {"name": "atd-data02"}),
    ]


def test_present_queues_change_nothing_and_a_queue_made_meanwhile_is_present(prefect, run_module):
    prefect.route("GET", "/work_pools/production", (200, existing()))
    prefect.route("POST", "/work_pools/production/queues/filter", (200, queues("default", "etl")))
    assert run_module(work_pool, {**ARGS, "queues": ["etl"]})["changed"] is False
    prefect.route("POST", "/work_pools/production/queues", (409, {"detail": "exists"}))
    assert run_module(work_pool, {**ARGS, "queues": ["gis"]})["queues_created"] == ["gis"]


def test_queues_are_listed_page_after_page(prefect, run_module):
    prefect.route("GET", "/work_pools/production", (200, existing()))
    first = queues(*(f"q{n}" for n in range(200)))
    prefect.route("POST", "/work_pools/production/queues/filter", [(200, first), (200, queues("q200"))])
    result = run_module(work_pool, {**ARGS, "queues": ["q0", "q200"]})
    assert result["changed"] is False
    assert [call[2]["offset"] for call in prefect.calls if call[1].endswith("/filter")] == [0, 200]


def test_check_mode_names_the_queues_it_would_create_and_writes_nothing(prefect, run_module):
    prefect.route("GET", "/work_pools/production", (200, existing()))
    prefect.route("POST", "/work_pools/production/queues/filter", (200, queues("default")))
    result = run_module(work_pool, {**ARGS, "queues": ["etl"]}, check_mode=True)
    assert (result["changed"], result["queues_created"]) == (True, ["etl"])
    assert [call for call in prefect.writes() if not call[1].endswith("/filter")] == []
