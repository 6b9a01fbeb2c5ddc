"""The deployments' registrar (prefect_fleet_host.deploy, `prefect-fleet deploy`) reads a branch's
spec as the hosts do: every bad input is named before any change, a good spec becomes the API's
deployments, and the repository's own flows/deployments.yml is good. The API side is tested end to
end on the lab (tests/lab/test_deployments.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from prefect_fleet_host import deploy
from tests.conftest import ROOT

LABELS = ["atd-data02", "etl"]
FLOW = (ROOT / "tests" / "data" / "hello.py").read_text()
# How the controller runs the host package (make check-flows): its sources on the path.
HOST_ENV = {**os.environ, "PYTHONPATH": str(ROOT / "host" / "src")}


@pytest.fixture
def flows(tmp_path) -> Path:
    (tmp_path / "hello").mkdir()
    (tmp_path / "hello" / "hello.py").write_text(FLOW)
    return tmp_path


def plan(flows: Path, *entries: dict, environment: str = "staging", active: bool = False, **allowed) -> list[dict]:
    return deploy.plan({"deployments": list(entries)}, flows, environment, LABELS, active, version="abc123", **allowed)


def problems(flows: Path, *entries: dict) -> list[str]:
    with pytest.raises(deploy.SpecError) as raised:
        plan(flows, *entries)
    return raised.value.problems


GOOD = {"name": "hello", "entrypoint": "hello/hello.py:hello", "labels": ["atd-data02"]}


def test_a_good_entry_is_one_deployment_per_label_named_after_environment_and_label(flows):
    desired = plan(
        flows, dict(GOOD, labels=["atd-data02", "etl"], parameters={"who": "fleet"}), environment="production"
    )
    assert [d["name"] for d in desired] == ["hello-production-atd-data02", "hello-production-etl"]
    first = desired[0]
    assert first["flow_name"] == "hello-flow", "the flow's name comes from its decorator"
    assert (first["work_pool_name"], first["work_queue_name"]) == ("production", "atd-data02")
    assert first["parameters"] == {"who": "fleet"}
    assert set(first["parameter_openapi_schema"]["properties"]) == {"who", "times"}
    assert first["enforce_parameter_schema"] is True
    assert first["tags"] == sorted(["production", "atd-data02", deploy.MANAGED_TAG])
    assert first["version"] == "abc123"
    assert first["pull_steps"] == [{"prefect.deployments.steps.set_working_directory": {"directory": str(flows)}}]


def test_prefect_yaml_fields_are_taken(flows):
    (d,) = plan(
        flows,
        dict(
            GOOD,
            description="says hello",
            tags=["team-a"],
            concurrency_limit=2,
            paused=True,
            enforce_parameter_schema=False,
            work_pool={"job_variables": {"env": {"GREETING": "hi"}}},
        ),
    )
    assert d["description"] == "says hello"
    assert "team-a" in d["tags"]
    assert (d["concurrency_limit"], d["paused"], d["enforce_parameter_schema"]) == (2, True, False)
    assert d["job_variables"] == {"env": {"GREETING": "hi"}}


def test_schedules_are_inactive_outside_production_unless_the_spec_says_so_where_the_inventory_allows_it(flows):
    entry = dict(
        GOOD, schedules=[{"cron": "0 6 * * *", "timezone": "Europe/Berlin"}, {"interval": 600, "active": True}]
    )
    # A branch turns a schedule on where the inventory keeps them off only with its allowance.
    with pytest.raises(deploy.SpecError) as refused:
        plan(flows, entry)
    assert refused.value.problems == [
        "deployments.yml, deployment 'hello', schedule #2: active, in staging whose schedules the inventory keeps off"
        " (fleet_environments.staging.branch_may_activate_schedules can let a branch turn one on)"
    ]
    staging = plan(flows, entry, may_activate=True)[0]["schedules"]
    assert [s["active"] for s in staging] == [False, True]
    assert staging[0]["schedule"] == {"cron": "0 6 * * *", "timezone": "Europe/Berlin", "day_or": True}
    assert staging[1]["schedule"]["interval"] == 600
    assert [s["slug"] for s in staging] == ["fleet-1", "fleet-2"]
    production = plan(flows, entry, environment="production", active=True)[0]["schedules"]
    assert [s["active"] for s in production] == [True, True]
    # The same spec twice is the same schedules (an interval's anchor does not move).
    assert plan(flows, entry, may_activate=True)[0]["schedules"] == staging
    # `active: false` needs no allowance anywhere.
    quiet = dict(GOOD, schedules=[{"interval": 600, "active": False}])
    assert [s["active"] for s in plan(flows, quiet, environment="production", active=True)[0]["schedules"]] == [False]


@pytest.mark.parametrize("variable", deploy.GUARDED_JOB_VARIABLES)
def test_a_guarded_job_variable_needs_the_inventorys_allowance(flows, variable):
    """What a run executes and where is the fleet's unless the inventory hands it to the branch."""
    value = {"command": "sh -c 'cat /etc/prefect-worker/*.env'", "working_dir": "/", "stream_output": True}[variable]
    entry = dict(GOOD, work_pool={"job_variables": {variable: value, "env": {"A": "1"}}})
    assert problems(flows, entry) == [
        f"deployments.yml, deployment 'hello': work_pool.job_variables.{variable} is the fleet's to set in"
        f" staging (fleet_environments.staging.branch_may_set_job_variables can hand it to the branch)"
    ]
    (allowed,) = plan(flows, entry, may_set=[variable])
    assert allowed["job_variables"] == {variable: value, "env": {"A": "1"}}
    # Another guarded variable is still refused.
    other = next(name for name in deploy.GUARDED_JOB_VARIABLES if name != variable)
    with pytest.raises(deploy.SpecError, match=f"job_variables.{other} is the fleet's to set"):
        plan(flows, dict(GOOD, work_pool={"job_variables": {variable: value, other: "x"}}), may_set=[variable])


def test_the_role_checks_the_inventorys_allowance_against_the_same_job_variables():
    role_vars = yaml.safe_load((ROOT / "roles/prefect_worker/vars/main.yml").read_text())
    assert tuple(role_vars["_prefect_worker_guarded_job_variables"]) == deploy.GUARDED_JOB_VARIABLES


@pytest.mark.parametrize("target", ["/etc/prefect-worker/staging.env", "../../outside.env"])
def test_a_dotenv_leading_out_of_the_flows_is_refused_and_not_read(flows, target):
    """Followed, a linked .env would publish the file it points at as the runs' job variables."""
    outside = flows.parent / "outside.env"
    outside.write_text("PREFECT_API_AUTH_STRING=admin:secret\n")
    (flows / "hello" / ".env").symlink_to(target)
    found = problems(flows, GOOD)
    assert found == [
        f"deployments.yml, deployment 'hello': hello/.env -> {target} leads out of {flows.name}/ (a symbolic link):"
        " refused"
    ]
    assert "secret" not in " ".join(found)


def test_a_dotenv_linked_inside_the_flows_is_read(flows):
    (flows / "shared.env").write_text("GREETING=hello\n")
    (flows / "hello" / ".env").symlink_to("../shared.env")
    (d,) = plan(flows, GOOD)
    assert d["job_variables"]["env"] == {"GREETING": "hello"}


def test_a_projects_dotenv_reaches_its_runs_and_the_spec_wins(flows):
    (flows / "hello" / ".env").write_text("# settings\nGREETING=hello\nexport REGION='eu'\nTARGET=\"db\"\n")
    (d,) = plan(flows, dict(GOOD, work_pool={"job_variables": {"env": {"TARGET": "warehouse"}}}))
    assert d["job_variables"]["env"] == {"GREETING": "hello", "REGION": "eu", "TARGET": "warehouse"}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "hello", "labels": ["etl"]}, "deployment 'hello': entrypoint is missing"),
        (dict(GOOD, flow="hello-flow"), "unknown field 'flow' (the flow's name comes from its @flow decorator"),
        (dict(GOOD, colour="red"), "unknown field 'colour' (known: "),
        (dict(GOOD, cron="* * * * *"), "unknown field 'cron' (a schedule goes in `schedules: [{cron: ...}]`)"),
        (dict(GOOD, entrypoint="hello/hello.py"), "entrypoint must read path/file.py:function, got 'hello/hello.py'"),
        (dict(GOOD, entrypoint="hello/gone.py:hello"), "entrypoint 'hello/gone.py:hello':"),
        (dict(GOOD, entrypoint="../x.py:hello"), "is outside"),
        (dict(GOOD, entrypoint="hello/hello.py:nobody"), "entrypoint 'hello/hello.py:nobody':"),
        (dict(GOOD, schedules=[{"cron": "61 * * * *"}]), "schedule #1: cron '61 * * * *': Invalid cron string"),
        (dict(GOOD, schedules=[{"cron": "0 * * * *", "timezone": "Mars/Base"}]), 'Invalid timezone: "Mars/Base"'),
        (dict(GOOD, schedules=[{"rrule": "NOPE"}]), "schedule #1: rrule 'NOPE':"),
        (dict(GOOD, schedules=[{"cron": "0 * * * *", "interval": 60}]), "needs exactly one of cron, interval, rrule"),
        (dict(GOOD, schedules=[{"cron": "0 * * * *", "when": "now"}]), "schedule #1: unknown field(s) when"),
        (
            dict(GOOD, labels=["atd-data09"]),
            "labels atd-data09 are carried by no worker host (hosts carry: atd-data02, etl)",
        ),
        (dict(GOOD, labels=[]), "labels must list at least one host label"),
        (dict(GOOD, name="Hello_World"), "deployment 'Hello_World': name must be lower-case letters"),
        (dict(GOOD, parameters={"whom": "x"}), "parameters whom are not parameters of hello/hello.py:hello"),
        (dict(GOOD, concurrency_limit=0), "concurrency_limit must be a whole number above 0"),
        (dict(GOOD, paused="yes"), "paused must be true or false"),
        (dict(GOOD, work_pool={"name": "other"}), "work_pool.name is the fleet's to set"),
    ],
)
def test_each_bad_entry_is_named(flows, entry, message):
    found = problems(flows, entry)
    assert any(message in problem for problem in found), found


def test_every_problem_is_reported_at_once_and_a_good_entry_is_not_blamed(flows):
    found = problems(flows, dict(GOOD, name="one", labels=["nowhere"]), dict(GOOD, name="two"), dict(GOOD, name="one"))
    assert any("'one': labels nowhere" in p for p in found)
    assert any("'one': a second deployment of that name" in p for p in found)
    assert not any("'two'" in p for p in found)


def test_a_bad_dotenv_line_is_named(flows):
    (flows / "hello" / ".env").write_text("GREETING hello\n")
    assert any(".env: line 1 is not KEY=VALUE" in p for p in problems(flows, GOOD))


def test_a_spec_that_is_not_a_list_of_deployments_is_refused(flows):
    with pytest.raises(deploy.SpecError, match="a `deployments:` list"):
        deploy.plan({"deployment": []}, flows, "staging", LABELS, False)


def check_flows(labels: str) -> subprocess.CompletedProcess[str]:
    """`make check-flows`: the command a CI job runs before a push, with the fleet's host labels."""
    return subprocess.run(
        [sys.executable, "-m", "prefect_fleet_host", "deploy", "--check", str(ROOT / "flows"), "--labels", labels],
        capture_output=True,
        text=True,
        check=False,
        env=HOST_ENV,
    )


def test_the_repositorys_own_spec_passes_the_check_as_ci_would_run_it():
    result = check_flows("atd-data02,atd-data03,atd-data04,etl")  # the lab's hosts' labels
    assert result.returncode == 0, result.stderr
    assert "fleet-report-staging-atd-data02\tfleet-report\t" in result.stdout
    assert "etl-report-staging-etl" in result.stdout
    bad = check_flows("atd-data02")
    assert bad.returncode == 1
    assert "deployment 'etl-report': labels etl are carried by no worker host" in bad.stderr
