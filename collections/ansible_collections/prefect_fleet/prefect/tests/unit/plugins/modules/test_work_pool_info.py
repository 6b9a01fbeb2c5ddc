"""work_pool_info with the API faked."""

from __future__ import annotations

from ansible_collections.prefect_fleet.prefect.plugins.modules import work_pool_info


def serve_production(prefect) -> None:
    prefect.route("GET", "/admin/version", (200, "3.8.8"))
    prefect.route("GET", "/work_pools/production", (200, {"name": "production", "is_paused": False}))
    prefect.route(
        "POST",
        "/work_pools/production/workers/filter",
        (200, [{"name": "atd-data02-production", "status": "ONLINE", "last_heartbeat_time": "t"}]),
    )
    prefect.route(
        "POST",
        "/work_pools/production/queues/filter",
        (200, [{"name": "etl", "status": "READY", "is_paused": False}]),
    )
    prefect.route("POST", "/flow_runs/count", (200, 3))
    prefect.route(
        "POST",
        "/flow_runs/filter",
        (
            200,
            [
                {
                    "id": "r1",
                    "name": "a",
                    "state": {"type": "RUNNING"},
                    "work_queue_name": "etl",
                    "infrastructure_pid": "atd-data02:4242",
                },
                {"id": "r2", "name": "b", "state": {"type": "PENDING"}, "work_queue_name": "etl"},
                {
                    "id": "r3",
                    "name": "c",
                    "state": {"type": "RUNNING"},
                    "work_queue_name": "etl",
                    "infrastructure_pid": "5001",
                },
            ],
        ),
    )


def test_reads_workers_queues_and_runs_in_flight_with_their_host(prefect, run_module):
    serve_production(prefect)
    result = run_module(work_pool_info, {"pools": ["production"]})
    assert result["changed"] is False
    assert result["version"] == "3.8.8"
    pool = result["pools"]["production"]
    assert pool["workers"] == [{"name": "atd-data02-production", "status": "ONLINE", "last_heartbeat_time": "t"}]
    assert pool["queues"] == {"etl": {"status": "READY", "paused": False, "scheduled": 3}}
    assert [(run["id"], run["host"], run["pid"]) for run in pool["in_flight"]] == [
        ("r1", "atd-data02", "4242"),
        ("r2", "", ""),
        ("r3", "", "5001"),
    ]
    counted = [body for method, path, body in prefect.calls if path == "/flow_runs/count"]
    assert counted == [
        {
            "work_pools": {"name": {"any_": ["production"]}},
            "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}},
            "work_pool_queues": {"name": {"any_": ["etl"]}},
        }
    ]
    assert {method for method, _path, _body in prefect.calls} <= {"GET", "POST"}  # POST only to */filter, */count
    assert all(path.endswith(("/filter", "/count")) for method, path, _body in prefect.calls if method == "POST")


def test_a_missing_pool_is_reported_not_an_error(prefect, run_module):
    prefect.route("GET", "/admin/version", (200, "3.8.8"))
    result = run_module(work_pool_info, {"pools": ["qa"]})
    assert result["failed"] is False
    assert result["pools"]["qa"]["exists"] is False


def test_an_unreachable_api_fails_with_its_address(prefect, run_module):
    prefect.route("GET", "/admin/version", (503, {"detail": "down"}))
    result = run_module(work_pool_info, {"pools": ["production"]})
    assert result["failed"] is True
    assert "/admin/version" in result["msg"]
    assert "503" in result["msg"]


def test_an_out_of_range_limit_is_refused_before_any_call(prefect, run_module):
    result = run_module(work_pool_info, {"pools": ["production"], "in_flight_limit": 0})
    assert result["failed"] is True
    assert "in_flight_limit" in result["msg"]
    assert prefect.calls == []
