"""The prefect_fleet.prefect modules run by ansible-playbook against a real Prefect server started
on the controller's loopback: create, no-op, update, check mode, diff, auth and clear errors as the
real API answers them (the collection's own unit tests fake the API for the rest)."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from lab import prefect_api
from lab.ansible import playbook as run_playbook
from tests.conftest import ROOT, VENV_BIN

AUTH = "fleet:unit-test-Pa55"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """A Prefect server with basic auth on 127.0.0.1; yields its API URL."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = _free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_API_AUTH_STRING": AUTH,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home}/prefect.db",
    }
    log = (home / "server.log").open("w")
    server = subprocess.Popen(
        [str(VENV_BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/api"
    try:
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2):
                    break
            except OSError:
                if server.poll() is not None:
                    pytest.fail(f"the Prefect server exited: {(home / 'server.log').read_text()[-2000:]}")
                time.sleep(0.5)
        else:
            pytest.fail("the Prefect server did not answer /api/health within 60 s")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def process_template() -> dict:
    out = subprocess.check_output(
        [
            sys.executable,
            "-c",
            "import json; from prefect.workers.process import ProcessWorker; "
            "print(json.dumps(ProcessWorker.get_default_base_job_template()))",
        ],
        text=True,
    )
    return json.loads(out)


def on_localhost(tmp_path: Path, playbook: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """Run `playbook` on the controller with the collection on its path (the tests' one way)."""
    return run_playbook(
        "localhost,",
        "-c",
        "local",
        str(playbook),
        "-e",
        f"ansible_python_interpreter={sys.executable}",
        *flags,
        check=False,
        cwd=tmp_path,
        env={"ANSIBLE_COLLECTIONS_PATH": str(ROOT / "collections")},
    )


def module(tmp_path: Path, name: str, args: dict, *flags: str) -> tuple[int, dict]:
    """Run one module through ansible-playbook on localhost; return (rc, the task's result)."""
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        # Arguments come from a file through a lookup, whose result Ansible does not template: a base
        # job template holds Jinja-like placeholders ("{{ command }}") that must reach Prefect as is.
        f"    - {name}: \"{{{{ lookup('ansible.builtin.file', 'args.json') | from_json }}}}\"\n      register: result\n"
        "    - ansible.builtin.copy:\n        content: '{{ result | to_json }}'\n"
        f"        dest: {tmp_path}/result.json\n        mode: '0600'\n      check_mode: false\n"
    )
    (tmp_path / "args.json").write_text(json.dumps(args))
    proc = on_localhost(tmp_path, playbook, *flags)
    result_file = tmp_path / "result.json"
    if result_file.exists():
        result = json.loads(result_file.read_text())
        result_file.unlink()
        return proc.returncode, result
    # The task failed before the copy: take its result from the "FAILED! => {...}" line.
    for line in proc.stdout.splitlines():
        if "FAILED! => " in line:
            return proc.returncode, json.loads(line.split("FAILED! => ", 1)[1])
    return proc.returncode, {"failed": True, "msg": proc.stdout[-2000:] + proc.stderr[-2000:]}


def expect(tmp_path: Path, name: str, args: dict, changed: bool, *flags: str) -> dict:
    """Run a module that must succeed, and report `changed` as given."""
    rc, result = module(tmp_path, name, args, *flags)
    assert rc == 0, result
    assert result["changed"] is changed, result
    return result


def call(api: str, method: str, path: str, body: dict | None = None):
    """One API call through the tests' client, which retries what Prefect's client retries (the
    SQLite server of these tests answers 503 "database is locked" when the machine is busy)."""
    status, text = prefect_api.request(api + path, method, body, prefect_api.auth_headers(AUTH), timeout=10)
    if status >= 400:
        raise urllib.error.HTTPError(api + path, status, text.decode(errors="replace")[:300], {}, io.BytesIO(text))
    return json.loads(text)


def get(api: str, path: str) -> dict:
    return call(api, "GET", path)


def test_pool_created_then_unchanged(api, process_template, tmp_path):
    args = {
        "api_url": api,
        "auth_string": AUTH,
        "name": "production",
        "base_job_template": process_template,
        "job_variables": {"working_dir": "/opt/prefect/production", "stream_output": False},
    }
    expect(tmp_path, "prefect_fleet.prefect.work_pool", args, True)
    pool = get(api, "/work_pools/production")
    assert pool["type"] == "process"
    props = pool["base_job_template"]["variables"]["properties"]
    assert props["working_dir"]["default"] == "/opt/prefect/production"
    assert props["stream_output"]["default"] is False
    expect(tmp_path, "prefect_fleet.prefect.work_pool", args, False)


def test_pool_check_mode_and_diff_change_nothing(api, process_template, tmp_path):
    args = {"api_url": api, "auth_string": AUTH, "name": "staging", "base_job_template": process_template}
    result = expect(tmp_path, "prefect_fleet.prefect.work_pool", args, True, "--check", "--diff")
    assert result["diff"]["after"]["name"] == "staging"
    with pytest.raises(urllib.error.HTTPError) as missing:
        get(api, "/work_pools/staging")
    assert missing.value.code == 404


def test_pool_update_reports_the_difference(api, process_template, tmp_path):
    base = {"api_url": api, "auth_string": AUTH, "name": "updates", "base_job_template": process_template}
    expect(tmp_path, "prefect_fleet.prefect.work_pool", base, True)
    update = {**base, "concurrency_limit": 4, "description": "four"}
    result = expect(tmp_path, "prefect_fleet.prefect.work_pool", update, True, "--diff")
    assert result["diff"]["before"] == {"description": None, "concurrency_limit": None}
    assert result["diff"]["after"] == {"description": "four", "concurrency_limit": 4}
    assert get(api, "/work_pools/updates")["concurrency_limit"] == 4


def test_pool_absent(api, process_template, tmp_path):
    base = {"api_url": api, "auth_string": AUTH, "name": "gone", "base_job_template": process_template}
    expect(tmp_path, "prefect_fleet.prefect.work_pool", base, True)
    expect(tmp_path, "prefect_fleet.prefect.work_pool", {**base, "state": "absent"}, True)
    expect(tmp_path, "prefect_fleet.prefect.work_pool", {**base, "state": "absent"}, False)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"auth_string": "fleet:wrong"}, "answered 401"),
        ({"auth_string": ""}, "answered 401"),
        ({"api_url": "http://127.0.0.1:9/api"}, "cannot reach the Prefect API"),
        (
            {"job_variables": {"no_such_variable": 1}},
            "job_variables no_such_variable are not variables of the base job template",
        ),
        ({"type": "docker"}, "a pool's type cannot change"),
        ({"concurrency_limit": -1}, "concurrency_limit must be 0 (no limit) or more"),
    ],
    ids=["wrong-auth", "no-auth", "unreachable", "unknown-job-variable", "type-change", "negative-limit"],
)
def test_pool_errors_are_clear(api, process_template, tmp_path, args, message):
    base = {"api_url": api, "auth_string": AUTH, "name": "production", "base_job_template": process_template}
    rc, result = module(tmp_path, "prefect_fleet.prefect.work_pool", {**base, **args})
    assert rc != 0
    assert message in result["msg"]


def test_queue_lifecycle(api, process_template, tmp_path):
    pool = {"api_url": api, "auth_string": AUTH, "name": "queues", "base_job_template": process_template}
    expect(tmp_path, "prefect_fleet.prefect.work_pool", pool, True)
    args = {"api_url": api, "auth_string": AUTH, "pool": "queues", "name": "atd-data02"}
    expect(tmp_path, "prefect_fleet.prefect.work_queue", args, True, "--check")
    expect(tmp_path, "prefect_fleet.prefect.work_queue", args, True)
    assert get(api, "/work_pools/queues/queues/atd-data02")["name"] == "atd-data02"
    expect(tmp_path, "prefect_fleet.prefect.work_queue", args, False)
    result = expect(tmp_path, "prefect_fleet.prefect.work_queue", {**args, "concurrency_limit": 2}, True, "--diff")
    assert result["diff"] == {"before": {"concurrency_limit": None}, "after": {"concurrency_limit": 2}}
    expect(tmp_path, "prefect_fleet.prefect.work_queue", {**args, "state": "absent"}, True)


def test_queue_in_a_missing_pool_is_a_clear_error(api, tmp_path):
    args = {"api_url": api, "auth_string": AUTH, "pool": "no-such-pool", "name": "atd-data02"}
    rc, result = module(tmp_path, "prefect_fleet.prefect.work_queue", args)
    assert rc != 0
    assert "work pool no-such-pool does not exist" in result["msg"]


def test_module_defaults_set_the_connection_once_for_every_module(api, tmp_path):
    """The collection's action group `api`: a play sets api_url and the credential once with
    module_defaults, and every module of the collection takes them."""
    template = (ROOT / "roles/prefect_objects/files/process-base-job-template-3.8.8.json").read_text()
    (tmp_path / "template.json").write_text(template)
    playbook = tmp_path / "defaults.yml"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n"
        "  module_defaults:\n    group/prefect_fleet.prefect.api:\n"
        f"      api_url: {api}\n      auth_string: {AUTH}\n"
        "  tasks:\n"
        "    - prefect_fleet.prefect.work_pool:\n        name: grouped\n"
        "        base_job_template: \"{{ lookup('ansible.builtin.file', 'template.json') | from_json }}\"\n"
        "    - prefect_fleet.prefect.work_queue:\n        pool: grouped\n        name: atd-data02\n"
        "    - prefect_fleet.prefect.secret_block:\n        name: grouped-token\n        value: x\n"
        "    - prefect_fleet.prefect.work_pool_info:\n        pools: [grouped]\n      register: info\n"
        "    - ansible.builtin.assert:\n        that: info.pools.grouped.queues.keys() | list | sort"
        " == ['atd-data02', 'default']\n"
    )
    proc = on_localhost(tmp_path, playbook)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert get(api, "/work_pools/grouped/queues/atd-data02")["name"] == "atd-data02"
    assert AUTH not in proc.stdout + proc.stderr


def test_the_removed_deployment_module_names_what_replaced_it(tmp_path):
    rc, result = module(tmp_path, "prefect_fleet.prefect.deployment", {"api_url": "http://127.0.0.1:9/api"})
    assert rc != 0
    assert "Removed in 2.0.0: the fleet registers deployments with its registrar" in " ".join(result["msg"].split())


SECRET = "s3cret-value-that-must-not-leak-4711"


def test_secret_block_lifecycle_never_shows_the_value(api, tmp_path):
    args = {"api_url": api, "auth_string": AUTH, "name": "staging-unit-token", "value": SECRET}
    checked = expect(tmp_path, "prefect_fleet.prefect.secret_block", args, True, "--check", "--diff")
    with pytest.raises(urllib.error.HTTPError):
        get(api, "/block_types/slug/secret/block_documents/name/staging-unit-token")
    created = expect(tmp_path, "prefect_fleet.prefect.secret_block", args, True, "--diff")
    stored = get(api, "/block_types/slug/secret/block_documents/name/staging-unit-token?include_secrets=true")
    assert stored["data"] == {"value": SECRET}
    # Without include_secrets, the API itself hides it.
    assert SECRET not in json.dumps(get(api, "/block_types/slug/secret/block_documents/name/staging-unit-token"))
    unchanged = expect(tmp_path, "prefect_fleet.prefect.secret_block", args, False)
    changed = expect(tmp_path, "prefect_fleet.prefect.secret_block", {**args, "value": SECRET + "-2"}, True)
    again = get(api, "/block_types/slug/secret/block_documents/name/staging-unit-token?include_secrets=true")
    assert (again["id"], again["data"]) == (stored["id"], {"value": SECRET + "-2"})
    for result in (checked, created, unchanged, changed):
        assert SECRET not in json.dumps(result), result
    expect(tmp_path, "prefect_fleet.prefect.secret_block", {**args, "state": "absent"}, True)
    expect(tmp_path, "prefect_fleet.prefect.secret_block", {**args, "state": "absent"}, False)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"name": "Staging_Token"}, "the Secret block name 'Staging_Token' is not valid"),
        ({"value": None}, "state is present but all of the following are missing: value"),
        ({"api_key": "pnu_x"}, "auth_string (a self-hosted server's basic auth) and api_key (Prefect Cloud) exclude"),
    ],
    ids=["bad-name", "no-value", "two-credentials"],
)
def test_secret_block_errors_are_clear(api, tmp_path, args, message):
    base = {"api_url": api, "auth_string": AUTH, "name": "staging-unit-token", "value": SECRET}
    rc, result = module(
        tmp_path, "prefect_fleet.prefect.secret_block", {k: v for k, v in {**base, **args}.items() if v is not None}
    )
    assert rc != 0
    assert message in result["msg"]
    assert SECRET not in json.dumps(result)


def test_the_registrar_makes_an_environments_deployments_what_its_spec_declares(api, process_template, tmp_path):
    """`prefect-fleet deploy` (prefect_fleet_host.deploy) as the prefect-deploy@ unit runs it (its own
    process, a checkout's layout, its settings file), against the real API: create, nothing to do
    the second time, a changed schedule replaced, a dropped entry paused or deleted, a deployment
    made by hand in the same pool left alone, and a wrong spec changing nothing."""
    expect(
        tmp_path,
        "prefect_fleet.prefect.work_pool",
        {"api_url": api, "auth_string": AUTH, "name": "regis", "base_job_template": process_template},
        True,
    )
    state_dir = tmp_path / "regis"
    settings = tmp_path / "regis.deploy.json"
    entry = {"name": "hello", "entrypoint": "hello/hello.py:hello", "labels": ["atd-data02", "etl"]}
    other = {
        "name": "other",
        "entrypoint": "hello/hello.py:hello",
        "labels": ["etl"],
        "schedules": [{"cron": "0 6 * * *"}],
    }

    def register(commit: str, *entries, removal: str = "delete") -> tuple[int, dict]:
        """Check out `entries` as commit `commit` (a tree as the git sync makes it) and register."""
        tree = state_dir / "trees" / f"{commit}-1"
        (tree / "flows" / "hello").mkdir(parents=True, exist_ok=True)
        (tree / "flows" / "hello" / "hello.py").write_text((ROOT / "tests/data/hello.py").read_text())
        (tree / "flows" / "deployments.yml").write_text(json.dumps({"deployments": list(entries)}))
        (state_dir / "current").unlink(missing_ok=True)
        (state_dir / "current").symlink_to(tree)
        config = {
            "environment": "regis",
            "state_dir": str(state_dir),
            "flows_dir": "flows",
            "spec": "deployments.yml",
            "known_labels": ["atd-data02", "etl"],
            "schedules_active": False,
            # Lets commit c2 turn its schedule on in this quiet environment (tests/unit: refused without it).
            "branch_may_activate_schedules": True,
            "removal": removal,
        }
        settings.write_text(json.dumps(config))
        env = {
            **os.environ,
            "PREFECT_API_URL": api,
            "PREFECT_API_AUTH_STRING": AUTH,
            "PREFECT_HOME": str(tmp_path / "home"),
            "PYTHONPATH": str(ROOT / "host" / "src"),
        }
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "prefect_fleet_host",
                "deploy",
                "--python",
                sys.executable,
                "--config",
                str(settings),
                "regis",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert AUTH not in proc.stdout + proc.stderr
        return proc.returncode, json.loads((state_dir / "deploy-state.json").read_text())

    def names() -> dict:
        found = call(api, "POST", "/deployments/filter", {"work_pools": {"name": {"any_": ["regis"]}}})
        return {d["name"]: d for d in found}

    def post(path: str, body: dict) -> dict:
        return call(api, "POST", path, body)

    # One made by hand in the same pool, without the fleet's tag.
    flow_id = post("/flows/", {"name": "hello-flow"})["id"]
    post("/deployments/", {"name": "manual", "flow_id": flow_id, "work_pool_name": "regis", "entrypoint": "x.py:f"})

    rc, state = register("c1", entry, other)
    assert (rc, state["ok"]) == (0, True), state
    assert state["created"] == ["hello-regis-atd-data02", "hello-regis-etl", "other-regis-etl"]
    assert (state_dir / ".deployed-commit").read_text().strip() == "c1"
    rc, state = register("c1", entry, other)
    assert state["unchanged"] == ["hello-regis-atd-data02", "hello-regis-etl", "other-regis-etl"]
    assert state["created"] + state["updated"] + state["removed"] == []
    current = names()
    assert [(s["schedule"]["cron"], s["active"]) for s in current["other-regis-etl"]["schedules"]] == [
        ("0 6 * * *", False)
    ]
    assert current["hello-regis-etl"]["version"] == "c1"
    assert current["hello-regis-etl"]["path"] == str(state_dir / "current" / "flows")

    rc, state = register("c2", entry, dict(other, schedules=[{"cron": "0 7 * * *", "active": True}]))
    assert sorted(state["updated"]) == ["hello-regis-atd-data02", "hello-regis-etl", "other-regis-etl"]
    schedules = names()["other-regis-etl"]["schedules"]
    assert [(s["schedule"]["cron"], s["active"]) for s in schedules] == [("0 7 * * *", True)]

    rc, state = register("c3", entry, removal="pause")
    assert state["paused"] == ["other-regis-etl"]
    assert names()["other-regis-etl"]["paused"] is True

    # A wrong spec: exit 1, every problem in the state, nothing changed, the commit not tried again.
    before = {name: d["version"] for name, d in names().items()}
    rc, state = register("c4", entry, dict(other, labels=["nowhere"]), {"name": "x"})
    assert (rc, state["ok"], state["kind"]) == (1, False, "spec")
    assert len(state["errors"]) == 3, state["errors"]  # the label of one, the labels and entrypoint of the other
    assert {name: d["version"] for name, d in names().items()} == before
    assert (state_dir / ".deployed-commit").read_text().strip() == "c4"

    rc, state = register("c5", dict(entry, labels=["etl"]))
    assert state["removed"] == ["hello-regis-atd-data02", "other-regis-etl"]
    assert set(names()) == {"hello-regis-etl", "manual"}, "the one made by hand stays"
