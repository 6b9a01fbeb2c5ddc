"""End to end on the lab: a flow pushed to `main` (so a staging run) tries to reach production's
files on the host it runs on, each attempt reported on its own, and every one is refused: it runs as
staging's own user, which can neither read production's settings, deploy key, checkout and venv
nor write production's checkout, venvs, temporary files or units.
"""

from __future__ import annotations

import secrets

import pytest

from lab.fleet import deployer, deployment, settle, wait_for, wait_for_checkouts
from lab.flowruns import describe, start, wait
from lab.repo import push, remove

pytestmark = pytest.mark.lab

LABEL = "atd-data03"
# What the flow tries, as (what, how, path): each is reported "refused" or what it got.
ATTEMPTS = [
    ("read production's settings (the API credential)", "read", "/etc/prefect-worker/production.env"),
    ("read production's deploy key", "read", "/etc/prefect-worker/production.deploy_key"),
    ("read production's checkout", "read", "/opt/prefect/production/current/flows/deployments.yml"),
    ("read production's venv", "read", "/opt/prefect/production/venv/pyvenv.cfg"),
    ("write into production's checkout", "write", "/opt/prefect/production/current/flows/probe.py"),
    ("write into production's venvs", "write", "/opt/prefect/production/venvs/probe"),
    ("write into production's temporary files", "write", "/opt/prefect/production/tmp/probe"),
    ("write a unit", "write", "/etc/systemd/system/probe.service"),
    # The process holding production's settings: its worker (found by its pool among /proc's).
    ("read production's worker's environment", "environ", "--pool production"),
]
FLOW = '''"""A staging flow pushed by tests/lab/test_isolation.py: it tries production's files."""

import json
import os
import pwd

from prefect import flow, get_run_logger


def worker_environ(pool: str) -> str:
    for proc in os.listdir("/proc"):
        try:
            with open(f"/proc/{{proc}}/cmdline", "rb") as handle:
                if pool.replace(" ", "\\0").encode() in handle.read():  # its arguments, NUL-separated
                    return f"/proc/{{proc}}/environ"
        except OSError:
            pass
    return "/proc/none"


def attempt(how: str, path: str) -> str:
    try:
        if how == "environ":
            path = worker_environ(path)
            if path == "/proc/none":
                return "no such worker"
            how = "read"
        if how == "read":
            with open(path, "rb") as handle:
                return f"read {{len(handle.read())}} bytes"
        with open(path, "x") as handle:
            handle.write("written by a staging run")
        return "written"
    except OSError as error:
        return f"refused ({{type(error).__name__}})"


@flow(name="{flow}")
def probe(attempts: list) -> dict:
    report = {{"user": pwd.getpwuid(os.geteuid()).pw_name}}
    report.update({{what: attempt(how, path) for what, how, path in attempts}})
    get_run_logger().info("FLEET_REPORT %s", json.dumps(report))
    return report
'''


def test_a_staging_run_is_refused_each_of_productions_files(lab, tmp_path):
    api = lab.api
    nonce = secrets.token_hex(3)
    name, flow, path = f"probe-{nonce}", f"probe-flow-{nonce}", f"flows/probe/probe_{nonce}.py"
    entry = f"  - name: {name}\n    entrypoint: probe/probe_{nonce}.py:probe\n    labels: [{LABEL}]\n"
    bound = 3 * int(lab.server["prefect_worker_sync_interval"]) + 60

    on_main = push(
        lab, tmp_path, "main", f"Add {flow}", files={path: FLOW.format(flow=flow), "flows/deployments.yml": entry}
    )
    staging = f"{name}-staging-{LABEL}"
    wait_for(lambda: deployment(api, flow, staging), bound, f"staging deployment {staging}")
    wait_for_checkouts(lab, "staging", on_main, bound)
    attempts = [list(attempt) for attempt in ATTEMPTS]
    (ran,) = wait(api, [start(api, flow, staging, "staging", LABEL, {"attempts": attempts})], timeout=180)
    assert ran.state == "COMPLETED", describe(lab, ran)
    report = ran.report
    print("a staging run against production:", report)
    assert report["user"] == "prefect-staging"
    allowed = {what: got for what, _how, _path in ATTEMPTS if not (got := report[what]).startswith("refused")}
    assert not allowed, f"a staging run reached production: {allowed}"
    # The registrar that imported the pushed module ran as staging's user too.
    shown = lab.ssh(deployer(lab), "systemctl show -p User --value prefect-deploy@staging.service").stdout.strip()
    assert shown == "prefect-staging"

    removed = remove(lab, tmp_path, "main", name, path)
    settle(lab, "staging", removed)
