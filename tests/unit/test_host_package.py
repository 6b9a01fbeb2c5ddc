"""The host package (host/src/prefect_fleet_host) on recorded inputs: the checkout layout it owns,
the hook's reading of a registration's outcome, the lister of runs in flight on a recorded /proc,
the `prefect-fleet` command's JSON; and the wheel the roles install, built twice, is the same."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from prefect_fleet_host import __version__, after_sync, cli, runs
from prefect_fleet_host.layout import Layout, commit_of_tree, swap_link
from tests.conftest import ROOT

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def layout(tmp_path) -> Layout:
    layout = Layout.of(tmp_path / "production")
    tree = layout.new_tree(COMMIT)
    tree.mkdir(parents=True)
    swap_link(tree, layout.current)
    venv = layout.store / "abcdef0123456789"
    venv.mkdir(parents=True)
    swap_link(venv, layout.venv)
    return layout


def test_the_layout_names_the_checkout_its_commit_and_venv_without_git(layout):
    assert layout.current_commit() == COMMIT
    assert layout.current_venv().name == "abcdef0123456789"
    assert layout.store == layout.env_dir / "venvs"
    assert layout.describe() == {
        "environment": "production",
        "commit": COMMIT,
        "tree": str(layout.current_tree()),
        "venv": "abcdef0123456789",
        "deployed_commit": None,
    }
    layout.deployed_marker.write_text(COMMIT + "\n")
    assert layout.describe()["deployed_commit"] == COMMIT


def test_a_path_inside_a_tree_is_traced_to_its_commit(layout):
    assert layout.commit_of(layout.current_tree() / "flows" / "etl") == COMMIT
    assert layout.commit_of("/opt/prefect/staging/trees/x-1") is None
    assert commit_of_tree(f"{COMMIT}-1733412345") == COMMIT


def test_a_swap_replaces_the_link_in_one_rename(tmp_path):
    link = tmp_path / "current"
    swap_link(tmp_path / "a", link)
    swap_link(tmp_path / "b", link)
    assert os.readlink(link) == str(tmp_path / "b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current"]


def test_before_the_first_sync_there_is_no_checkout(tmp_path):
    empty = Layout.of(tmp_path / "staging")
    assert (empty.current_commit(), empty.current_venv(), empty.deploy_state()) == (None, None, {})


@pytest.mark.parametrize(
    ("state", "ok", "lines"),
    [
        ({"commit": COMMIT, "ok": True, "created": ["a", "b"], "removed": ["c"]}, True, ["created a, b; removed c"]),
        ({"commit": COMMIT, "ok": True}, True, ["no change"]),
        ({"commit": COMMIT, "ok": False, "kind": "spec", "errors": ["x"]}, False, ["the spec is wrong:", "  x"]),
        ({"commit": COMMIT, "ok": False, "kind": "api", "errors": ["503"]}, False, ["the API failed:", "  503"]),
        ({"commit": "other"}, False, ["the registration recorded no outcome"]),
    ],
    ids=["created", "no-change", "spec", "api", "none"],
)
def test_the_hook_reports_a_registrations_outcome(state, ok, lines):
    reported_ok, reported = after_sync.outcome(state, COMMIT)
    assert reported_ok is ok
    assert reported[0].startswith(f"deployments of {COMMIT[:12]}:")
    assert all(any(line in r for r in reported) for line in lines), reported


def _process(proc: Path, pid: int, cgroup: str, environ: dict[str, str]) -> None:
    (proc / str(pid)).mkdir()
    (proc / str(pid) / "cgroup").write_text(f"0::{cgroup}\n")
    (proc / str(pid) / "environ").write_bytes(b"\0".join(f"{k}={v}".encode() for k, v in environ.items()))


def test_runs_in_flight_are_the_processes_in_a_worker_units_cgroup_that_name_a_run(tmp_path):
    unit = "/system.slice/system-prefect\\x2dworker.slice/prefect-worker@{}.service"
    _process(tmp_path, 10, unit.format("production"), {"PATH": "/usr/bin"})  # the worker itself
    _process(tmp_path, 11, unit.format("production"), {"PREFECT__FLOW_RUN_ID": "run-b"})
    _process(tmp_path, 12, unit.format("production"), {"PREFECT__FLOW_RUN_ID": "run-b"})  # its child
    _process(tmp_path, 13, unit.format("staging"), {"PREFECT__FLOW_RUN_ID": "run-a"})
    _process(tmp_path, 14, "/system.slice/cron.service", {"PREFECT__FLOW_RUN_ID": "run-c"})
    (tmp_path / "self").mkdir()
    assert runs.in_flight(["production", "staging"], tmp_path) == [
        ("production", "run-b", 11),
        ("staging", "run-a", 13),
    ]
    assert runs.in_flight(["qa"], tmp_path) == []


def test_the_command_prints_a_checkout_as_json(layout, capsys):
    assert cli.main(["checkout", "production", "--root", str(layout.env_dir.parent)]) == 0
    assert json.loads(capsys.readouterr().out)["commit"] == COMMIT


def test_the_command_refuses_unknown_arguments_and_knows_its_version(capsys):
    with pytest.raises(SystemExit):
        cli.main(["runs"])
    with pytest.raises(SystemExit):
        cli.main(["checkout", "production", "--colour"])
    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert __version__ in capsys.readouterr().out


def test_the_wheel_the_roles_install_is_the_same_from_the_same_sources(tmp_path):
    wheels = []
    for build in ("one", "two"):
        subprocess.run(
            [sys.executable, "-m", "flit_core.wheel", "--outdir", str(tmp_path / build), str(ROOT / "host")],
            env={**os.environ, "SOURCE_DATE_EPOCH": "315532800"},
            capture_output=True,
            check=True,
        )
        (wheel,) = (tmp_path / build).iterdir()
        wheels.append(wheel)
    assert wheels[0].name == f"prefect_fleet_host-{__version__}-py3-none-any.whl"
    assert wheels[0].read_bytes() == wheels[1].read_bytes()


def test_the_status_reads_a_settings_file_as_systemd_does(tmp_path):
    from prefect_fleet_host.status import read_settings

    settings = tmp_path / "production.env"
    settings.write_text(
        '# managed\nFLEET_REPO="ssh://git@git/flows.git"\nGIT_SSH_COMMAND="ssh -i /etc/k -o A=B"\nEMPTY=""\n'
    )
    assert read_settings(settings) == {
        "FLEET_REPO": "ssh://git@git/flows.git",
        "GIT_SSH_COMMAND": "ssh -i /etc/k -o A=B",
        "EMPTY": "",
    }
    assert read_settings(tmp_path / "missing.env") == {}


def test_the_status_of_a_host_with_nothing_running_reports_each_environment(tmp_path, monkeypatch):
    """Everything down (no unit, no worker, no remote): the report says so, field by field, and the
    controller's rules judge it; the collector itself never fails."""
    from prefect_fleet_host import status

    monkeypatch.setattr(status, "units", lambda _environments: {})
    monkeypatch.setattr(status.runs, "in_flight", lambda _environments: [])
    (tmp_path / "production.env").write_text('FLEET_REPO="file:///nonexistent"\nPREFECT_WORKER_WEBSERVER_PORT="1"\n')
    report = status.collect(["production"], str(tmp_path / "root"), str(tmp_path), user_prefix="")
    assert report["environments"]["production"] == {
        "worker": "?",
        "timer": "?",
        "sync_result": "?",
        "sync_finished": 0,
        "sync_error": None,
        "health": -1,
        "commit": None,
        "venv": None,
        "head": "",
        "runs": [],
        "deploy": None,
    }
    assert report["uptime"] > 0


def test_the_dask_comparison_names_each_package_that_differs_from_the_client():
    from prefect_fleet_host import dask_versions

    def side(python, distributed, dask="2026.1.0"):
        return {"host": {"python": python}, "packages": {"distributed": distributed, "dask": dask, "numpy": None}}

    # Client.get_versions() of a client, its scheduler and two workers, trimmed to what is read.
    versions = {
        "client": side("3.11.2.final.0", "2026.1.0"),
        "scheduler": side("3.11.2.final.0", "2026.1.0"),
        "workers": {"tcp://w1": side("3.11.2.final.0", "2026.1.0"), "tcp://w2": side("3.12.1.final.0", "2026.2.0")},
    }
    assert dask_versions.differences(versions) == [
        "distributed tcp://w2=2026.2.0 (client 2026.1.0)",
        "python tcp://w2=3.12.1.final.0 (client 3.11.2.final.0)",
    ]
    versions["workers"].pop("tcp://w2")
    assert dask_versions.differences(versions) == []


@pytest.fixture
def offline_status(monkeypatch):
    """The status module on a host with no unit, no run in flight and no remote: only what a test
    sets up is read for real."""
    from prefect_fleet_host import status

    monkeypatch.setattr(status, "units", lambda _environments: {})
    monkeypatch.setattr(status.runs, "in_flight", lambda _environments: [])
    monkeypatch.setattr(status, "remote_head", lambda _settings, _user: "")
    return status


def dask_answers(status, tmp_path, dask: list[tuple[str, str, str]]) -> tuple[dict, dict]:
    """The Dask comparisons of production's and staging's reports, their clients given by `dask`."""
    report = status.collect(["production", "staging"], str(tmp_path / "root"), str(tmp_path), user_prefix="", dask=dask)
    return report["environments"]["production"]["dask"], report["environments"]["staging"]["dask"]


def test_the_dask_comparison_runs_with_the_environments_interpreter_and_answers_what_failed(tmp_path, offline_status):
    """Run for real with this interpreter: a scheduler that does not listen is the answer, not a
    failure of the report; an interpreter that is missing is one too. Only the asked environment
    carries the comparison."""
    status = offline_status
    (tmp_path / "root" / "production" / "venv" / "bin").mkdir(parents=True)
    (tmp_path / "root" / "production" / "venv" / "bin" / "python").symlink_to(sys.executable)
    production, staging = dask_answers(
        status, tmp_path, [("production", "shared", "tcp://127.0.0.1:9"), ("staging", "shared", "tcp://127.0.0.1:9")]
    )
    assert (production["cluster"], production["address"]) == ("shared", "tcp://127.0.0.1:9")
    assert production["error"].startswith("ConnectionRefusedError"), production
    assert staging["error"].startswith("FileNotFoundError"), staging  # staging has no venv here
    assert (
        "dask"
        not in status.collect(["production"], str(tmp_path / "root"), str(tmp_path), user_prefix="")["environments"][
            "production"
        ]
    )


def test_environments_that_share_a_venv_compare_their_dask_clients_in_one_process(
    tmp_path, monkeypatch, offline_status
):
    """Importing distributed is most of a comparison's cost: one interpreter per venv, one answer
    per environment's scheduler, in order (environments shared venvs in the layout before
    per-environment users, until their first sync in the new one)."""
    status = offline_status
    shared = tmp_path / "root" / "_venvs" / "abc"
    (shared / "bin").mkdir(parents=True)
    (shared / "bin" / "python").symlink_to(sys.executable)
    for environment in ("production", "staging"):
        (tmp_path / "root" / environment).mkdir()
        (tmp_path / "root" / environment / "venv").symlink_to("../_venvs/abc")
    started, run = [], status.subprocess.run

    def counting(command, **kwargs):
        started.append(command)
        return run(command, **kwargs)

    monkeypatch.setattr(status.subprocess, "run", counting)
    production, staging = dask_answers(
        status,
        tmp_path,
        [("production", "production", "tcp://127.0.0.1:9"), ("staging", "staging", "tcp://127.0.0.1:7")],
    )
    assert [c[-2:] for c in started if "-I" in c] == [["tcp://127.0.0.1:9", "tcp://127.0.0.1:7"]]
    assert (production["cluster"], production["address"]) == ("production", "tcp://127.0.0.1:9")
    assert (staging["cluster"], staging["address"]) == ("staging", "tcp://127.0.0.1:7")
    assert production["error"].startswith("ConnectionRefusedError"), production
    assert staging["error"].startswith("ConnectionRefusedError"), staging


def test_the_status_command_takes_the_dask_clients_to_compare(monkeypatch):
    from prefect_fleet_host import status

    seen = {}
    monkeypatch.setattr(status, "main", lambda *args: seen.update(args=args) or 0)
    assert cli.main(["status", "production", "staging", "--dask", "production", "production", "tcp://s:8786"]) == 0
    assert seen["args"][0] == ["production", "staging"]
    assert seen["args"][4] == [("production", "production", "tcp://s:8786")]


def test_the_remote_head_is_asked_as_the_service_user_and_never_raises(monkeypatch):
    from prefect_fleet_host import status

    seen = {}

    def run(command, env, **_kwargs):
        seen.update(command=command, env=env)
        raise FileNotFoundError("runuser")

    monkeypatch.setattr(status.subprocess, "run", run)
    monkeypatch.setattr(status.os, "geteuid", lambda: 0)
    assert status.remote_head({"FLEET_REPO": "file:///r", "FLEET_BRANCH": "main"}, "root") == ""
    assert seen["command"][:4] == ["runuser", "-u", "root", "--"]
    assert "/usr/sbin" in seen["env"]["PATH"].split(":")  # where runuser lives


@pytest.mark.parametrize(("running", "starts"), [("activating", 2), ("inactive", 1)])
def test_a_sync_now_never_returns_a_run_that_began_before_it(layout, monkeypatch, running, starts):
    """A run the timer began before the call is joined by `systemctl start` and may have fetched
    too early: the unit is then started once more, and the report is that second run's checkout."""
    newer = "fedcba9876543210fedcba9876543210fedcba98"
    calls = []

    def run(command, **_kwargs):
        calls.append(command[1])
        if command[1] == "show":
            return subprocess.CompletedProcess(command, 0, stdout=f"{running}\n", stderr="")
        if calls.count("start") == starts:  # only a run begun by this call sees the new commit
            tree = layout.new_tree(newer)
            tree.mkdir(parents=True)
            swap_link(tree, layout.current)
        return subprocess.CompletedProcess(command, 0, stdout="", stderr="")

    monkeypatch.setattr(cli.subprocess, "run", run)
    rc, report = cli.sync_now("production", str(layout.env_dir.parent))
    assert rc == 0
    assert calls == ["show"] + ["start"] * starts
    assert (report["before"], report["commit"], report["updated"]) == (COMMIT, newer, True)
