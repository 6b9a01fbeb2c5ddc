"""automation with the API faked."""

from __future__ import annotations

from ansible_collections.prefect_fleet.prefect.plugins.modules import automation

FILTER = ("POST", "/automations/filter")
TRIGGER = {
    "type": "event",
    "posture": "Proactive",
    "after": ["prefect.flow-run.heartbeat"],
    "expect": ["prefect.flow-run.heartbeat", "prefect.flow-run.Completed"],
    "for_each": ["prefect.resource.id"],
    "threshold": 1,
    "within": 90,
}
ACTIONS = [{"type": "change-flow-run-state", "state": "CRASHED", "message": "no heartbeat"}]
ARGS = {"name": "Crash zombie flows", "trigger": TRIGGER, "actions": ACTIONS}


def stored(**changes) -> dict:
    """The automation as the server returns it: ids, defaults and sets in its own order."""
    trigger = {
        **TRIGGER,
        "id": "t-1",
        "match": {},
        "match_related": [],
        "expect": list(reversed(TRIGGER["expect"])),
        "within": 90.0,
    }
    return {
        "id": "a-1",
        "name": "Crash zombie flows",
        "description": "",
        "enabled": True,
        "tags": [],
        "trigger": trigger,
        "actions": [{**ACTIONS[0], "name": None, "force": False}],
        "actions_on_trigger": [],
        "actions_on_resolve": [],
        **changes,
    }


def test_a_missing_automation_is_created(prefect, run_module):
    prefect.route(*FILTER, (200, []))
    prefect.route("POST", "/automations/", lambda body: (201, {"id": "a-1", **body}))
    result = run_module(automation, ARGS)
    assert result["changed"] is True
    method, path, body = prefect.writes()[-1]
    assert (method, path) == ("POST", "/automations/")
    assert body["trigger"] == TRIGGER
    assert body["actions"] == ACTIONS
    assert body["enabled"] is True


def test_an_equal_automation_is_left_alone_despite_server_defaults_and_set_order(prefect, run_module):
    prefect.route(*FILTER, (200, [stored()]))
    assert run_module(automation, ARGS)["changed"] is False
    assert [call for call in prefect.writes() if call[1] != "/automations/filter"] == []


def test_a_changed_window_is_put_with_a_diff_of_what_changed(prefect, run_module):
    prefect.route(*FILTER, (200, [stored()]))
    prefect.route("PUT", "/automations/a-1", (204, None))
    prefect.route("GET", "/automations/a-1", (200, stored()))
    args = {**ARGS, "trigger": {**TRIGGER, "within": 120}}
    result = run_module(automation, args, diff=True)
    assert result["changed"] is True
    assert list(result["diff"]["after"]) == ["trigger"]
    assert prefect.writes()[-1][:2] == ("PUT", "/automations/a-1")
    assert prefect.writes()[-1][2]["trigger"]["within"] == 120


def test_check_mode_reports_without_writing(prefect, run_module):
    prefect.route(*FILTER, (200, [stored(enabled=False)]))
    result = run_module(automation, ARGS, check_mode=True)
    assert result["changed"] is True
    assert [call for call in prefect.writes() if call[1] != "/automations/filter"] == []


def test_two_automations_of_one_name_are_an_error_naming_both(prefect, run_module):
    prefect.route(*FILTER, (200, [stored(), stored(id="a-2")]))
    result = run_module(automation, ARGS)
    assert result["failed"] is True
    assert "a-1" in result["msg"]
    assert "a-2" in result["msg"]
    assert "unique" in result["msg"]


def test_absent_deletes_and_is_idempotent(prefect, run_module):
    prefect.route(*FILTER, [(200, [stored()]), (200, [])])
    prefect.route("DELETE", "/automations/a-1", (204, None))
    assert run_module(automation, {"name": ARGS["name"], "state": "absent"})["changed"] is True
    assert run_module(automation, {"name": ARGS["name"], "state": "absent"})["changed"] is False
    assert [call[:2] for call in prefect.writes() if call[0] == "DELETE"] == [("DELETE", "/automations/a-1")]


def test_present_without_trigger_is_an_error(prefect, run_module):
    result = run_module(automation, {"name": ARGS["name"], "actions": ACTIONS})
    assert result["failed"] is True
    assert "trigger" in result["msg"]
    assert prefect.calls == []
