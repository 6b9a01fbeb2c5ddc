"""The worker tier on "Prefect Cloud" (a stand-in, tests/cloud_standin.py), production and staging
each in a workspace of its own with its own key: workers, pools, automations, Secret blocks,
deployments and a flow run all go through the environment's workspace URL, every request with that
workspace's key as a bearer token (or, on websockets, in Prefect's auth message), none with
anything else; one environment's key is refused by the other's workspace; and each key is in no
file but its environment's 0600 settings, no command line, no journal."""

from __future__ import annotations

import json
import shlex
import time

import pytest

from tests.molecule_checks import HostApi

ENVIRONMENTS = {"production": 8081, "staging": 8082}


def call(worker, method: str, path: str, body: dict | None = None, environment: str = "production"):
    """An environment's workspace as its worker sees it: URL and key from its own 0600 settings."""
    return HostApi(worker, env_file=f"/etc/prefect-worker/{environment}.env")(method, path, body)


def requests(standin) -> list[dict]:
    return [json.loads(line) for line in standin.file("/opt/cloud-standin/requests.jsonl").content_string.splitlines()]


@pytest.mark.parametrize("environment", sorted(ENVIRONMENTS))
def test_workers_run_healthy_and_online_in_the_workspace(worker, environment):
    assert worker.service(f"prefect-worker@{environment}").is_running
    health = f"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{ENVIRONMENTS[environment]}/health').read().decode())"
    assert json.loads(worker.check_output("python3 -c " + shlex.quote(health))) == {"message": "OK"}
    pool = call(worker, "POST", f"/work_pools/{environment}/workers/filter", {}, environment)
    assert any(w["status"] == "ONLINE" for w in pool), pool


def test_each_settings_file_holds_its_workspace_and_key_alone_and_no_basic_auth(worker):
    own = {
        "production": ("/workspaces/9e8d7c6b-", "pnu_moleculeStandInKey"),
        "staging": ("/workspaces/3c2b1a0f-", "pnu_moleculeStagingKey"),
    }
    for environment, (workspace, key) in own.items():
        settings = worker.file(f"/etc/prefect-worker/{environment}.env")
        assert (settings.user, settings.mode) == ("root", 0o600)
        text = settings.content_string
        assert workspace in text.split('PREFECT_API_URL="', 1)[1].split('"', 1)[0], environment
        assert f'PREFECT_API_KEY="{key}' in text, environment
        other = [k for e, (_, k) in own.items() if e != environment]
        assert not [k for k in other if k in text], f"{environment}.env holds another workspace's key"
        assert "PREFECT_API_AUTH_STRING" not in text


@pytest.mark.parametrize("environment", sorted(ENVIRONMENTS))
def test_each_environment_registered_its_deployment_through_the_workspace(worker, environment):
    state = json.loads(worker.file(f"/opt/prefect/{environment}/deploy-state.json").content_string)
    assert state["ok"], state
    deployment = call(worker, "GET", f"/deployments/name/cloud-hello/hello-{environment}-cloud-a", None, environment)
    assert (deployment["work_pool_name"], deployment["version"]) == (environment, state["commit"])


def test_a_flow_run_completes_through_the_workspace(worker):
    deployment = call(worker, "GET", "/deployments/name/cloud-hello/hello-production-cloud-a")
    run = call(worker, "POST", f"/deployments/{deployment['id']}/create_flow_run", {"parameters": {"who": "molecule"}})
    deadline = time.monotonic() + 180
    state = None
    while time.monotonic() < deadline:
        state = call(worker, "GET", f"/flow_runs/{run['id']}")["state"]["type"]
        if state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            break
        time.sleep(2)
    assert state == "COMPLETED"


def test_the_secret_block_and_the_automations_were_made_through_the_workspace(worker):
    block = call(worker, "GET", "/block_types/slug/secret/block_documents/name/production-cloud-token")
    assert block["name"] == "production-cloud-token"
    names = {a["name"] for a in call(worker, "POST", "/automations/filter", {})}
    assert "fleet: crash zombie flow runs" in names


def test_every_request_carried_its_workspaces_key_and_nothing_else(standin):
    seen = requests(standin)
    wrong = [r for r in seen if r["verdict"] != "ok"]
    assert not wrong, wrong[:5]
    # Both workspaces were used, each by its own environment's clients (the stand-in checks the key).
    assert {r["workspace"] for r in seen} == {
        "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b",
        "3c2b1a0f-9e8d-4c7b-a6f5-e4d3c2b1a0f9",
    }
    paths = {
        (r["method"], r["path"].split("/workspaces/", 1)[1].split("/", 1)[1], r["websocket"], r["auth"]) for r in seen
    }
    # The Ansible modules (pools, automations, blocks), the registrar and the workers all came.
    assert any(p[1].startswith("work_pools/") and p[3] == "header" for p in paths), "the work_pool module"
    assert any(p[1] == "automations/" and p[0] == "POST" for p in paths), "the automations module"
    assert any(p[1] == "block_documents/" and p[0] == "POST" for p in paths), "the secret_block module"
    assert any(p[1] == "deployments/" and p[0] == "POST" for p in paths), "the registrar"
    assert any(p[1] == "events/in" and p[2] and p[3] == "header" for p in paths), "events, key in the header"
    assert any(p[1].endswith("/workers/connect") and p[3] == "message" for p in paths), "the worker channel"


# Runs on the worker host: production's workspace URL without a key, with basic auth, with a wrong
# key, and with staging's own key (read from staging's settings, never a command line); prints
# each status.
REFUSED = r"""
import urllib.error, urllib.request
text = open("/etc/prefect-worker/production.env").read()
url = text.split('PREFECT_API_URL="', 1)[1].split('"', 1)[0] + "/work_pools/filter"
staging = open("/etc/prefect-worker/staging.env").read().split('PREFECT_API_KEY="', 1)[1].split('"', 1)[0]
for header in ({}, {"Authorization": "Basic YWRtaW46eA=="}, {"Authorization": "Bearer pnu_wrong"},
               {"Authorization": "Bearer " + staging}):
    try:
        print(urllib.request.urlopen(urllib.request.Request(url, data=b"{}", headers=header), timeout=10).status)
    except urllib.error.HTTPError as error:
        print(error.code)
"""


def test_a_workspace_refuses_no_key_basic_auth_a_wrong_key_and_the_other_environments(worker, standin):
    assert worker.check_output("python3 -c " + shlex.quote(REFUSED)).split() == ["401"] * 4
    refused = [r["verdict"] for r in requests(standin) if r["verdict"] != "ok"]
    assert refused == ["missing", "basic", "wrong-key", "wrong-key"]


# Runs on the worker host, as root: reads the key from the settings file (never from a command
# line: Ansible logs a module's arguments to the journal) and prints where else it is.
SCAN = r"""
import glob, json, os, subprocess, sys
environment = sys.argv[1]
text = open(f"/etc/prefect-worker/{environment}.env").read()
key = text.split('PREFECT_API_KEY="', 1)[1].split('"', 1)[0]
journal = subprocess.run(["journalctl", "--no-pager", "-o", "verbose"], capture_output=True, text=True, errors="replace")
found = ["the journal"] if key in journal.stdout else []
for path in glob.glob("/proc/[0-9]*/cmdline"):
    try:
        if key.encode() in open(path, "rb").read():
            found.append(path)
    except OSError:
        pass
for top in ("/etc", "/opt", "/var/lib", "/var/log", "/tmp", "/run", "/home", "/root", "/srv"):
    for root, dirs, names in os.walk(top):
        dirs[:] = [d for d in dirs if d not in ("venvs", "site-packages")]
        for name in names:
            path = os.path.join(root, name)
            if path == f"/etc/prefect-worker/{environment}.env":
                continue
            try:
                if os.path.isfile(path) and not os.path.islink(path) and key.encode() in open(path, "rb").read():
                    found.append(path)
            except OSError:
                pass
print(json.dumps(found))
"""


@pytest.mark.parametrize("environment", sorted(ENVIRONMENTS))
def test_each_key_is_in_no_other_file_command_line_or_journal(worker, environment):
    assert json.loads(worker.check_output("python3 -c " + shlex.quote(SCAN) + " " + environment)) == []
