"""End to end on the lab: a flow pushed to `main` (so a staging run), and a package whose build runs
code required on `main` (so built by staging's git sync), try to reach production's files on the
hosts they run on, each attempt reported on its own, and every one is refused: they run as
staging's own user, which can neither read production's settings, deploy key, checkout and venv
nor write production's checkout, venvs, temporary files or units.
"""

from __future__ import annotations

import json
import secrets

import pytest

from lab.fleet import deployer, deployment, settle, wait_for, wait_for_checkouts, workers
from lab.flowruns import describe, start, wait
from lab.repo import push, remove, revert

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
# How each attempt is made, on the host, in the flow run and in the package build alike (sent as
# source); it returns "refused (...)" or what it got.
ATTEMPT = """
import glob
import json
import os
import pwd
import socket


def worker_environ(pool: str) -> str:
    for proc in os.listdir("/proc"):
        try:
            with open(f"/proc/{proc}/cmdline", "rb") as handle:
                if pool.replace(" ", "\\0").encode() in handle.read():  # its arguments, NUL-separated
                    return f"/proc/{proc}/environ"
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
        if how == "pth":  # a .pth file in site-packages runs at every start of that Python
            found = glob.glob(f"{path}/lib/python3*/site-packages")
            if not found:
                return "refused (its site-packages cannot be listed)"
            path, how = f"{found[0]}/probe.pth", "write"
        if how == "read":
            with open(path, "rb") as handle:
                return f"read {len(handle.read())} bytes"
        with open(path, "x") as handle:
            handle.write("import os; os.system('id > /tmp/pth-ran')\\n")
        return "written"
    except OSError as error:
        return f"refused ({type(error).__name__})"


def attempts_report(attempts: list) -> dict:
    report = {"user": pwd.getpwuid(os.geteuid()).pw_name, "host": socket.gethostname()}
    report.update({what: attempt(how, path) for what, how, path in attempts})
    return report
"""
FLOW = (
    '''"""A staging flow pushed by tests/lab/test_isolation.py: it tries production's files."""
'''
    + ATTEMPT
    + """
from prefect import flow, get_run_logger


@flow(name="FLOW_NAME")
def probe(attempts: list) -> dict:
    report = attempts_report(attempts)
    get_run_logger().info("FLEET_REPORT %s", json.dumps(report))
    return report
"""
)
# A package whose build runs code: an in-tree PEP 517 backend (it needs nothing downloaded), so
# that installing it from the flows' requirements runs this module in staging's git sync.
PYPROJECT = """[build-system]
requires = []
build-backend = "probe_backend"
backend-path = ["."]

[project]
name = "fleet-probe-NONCE"
version = "0"
"""
BACKEND = (
    '''"""Pushed by tests/lab/test_isolation.py: what the staging sync's build of this package runs."""
'''
    + ATTEMPT
    + """
ATTEMPTS = json.loads(ATTEMPTS_JSON)
with open("/opt/prefect/staging/probe-NONCE.json", "w") as out:
    json.dump(attempts_report(ATTEMPTS), out)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    raise RuntimeError("fleet-probe-NONCE: a probe, it builds nothing")
"""
)


def test_a_staging_run_is_refused_each_of_productions_files(lab, tmp_path):
    api = lab.api
    nonce = secrets.token_hex(3)
    name, flow, path = f"probe-{nonce}", f"probe-flow-{nonce}", f"flows/probe/probe_{nonce}.py"
    entry = f"  - name: {name}\n    entrypoint: probe/probe_{nonce}.py:probe\n    labels: [{LABEL}]\n"
    bound = 3 * int(lab.server["prefect_worker_sync_interval"]) + 60

    on_main = push(
        lab,
        tmp_path,
        "main",
        f"Add {flow}",
        files={path: FLOW.replace("FLOW_NAME", flow), "flows/deployments.yml": entry},
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


# What the build of a package pushed to `main` tries, from staging's git sync (the same form).
BUILD_ATTEMPTS = [
    ("read production's settings (the API credential)", "read", "/etc/prefect-worker/production.env"),
    ("read production's deploy key", "read", "/etc/prefect-worker/production.deploy_key"),
    ("write into the venv production runs", "write", "/opt/prefect/production/venv/probe"),
    ("write a .pth into the venv production runs", "pth", "/opt/prefect/production/venv"),
    ("write into production's checkout", "write", "/opt/prefect/production/current/flows/probe.py"),
    ("write into /opt/prefect (where the venvs shared by environments were)", "write", "/opt/prefect/probe"),
    ("write a unit", "write", "/etc/systemd/system/probe.service"),
    ("read production's worker's environment", "environ", "--pool production"),
]


def test_a_package_pushed_to_main_whose_build_runs_code_is_refused_productions_files(lab, tmp_path):
    """A requirements entry on `main` naming a package in the branch: staging's sync builds it, so
    its build backend runs, as staging's user in the sync's sandbox, on every worker host. It
    reports each attempt in staging's own directory, then fails the build: the sync fails visibly,
    and production's venv, checkout and runs go on untouched."""
    api = lab.api
    nonce = secrets.token_hex(3)
    package = f"flows/probe_{nonce}"
    report_file = f"/opt/prefect/staging/probe-{nonce}.json"
    backend = BACKEND.replace("ATTEMPTS_JSON", repr(json.dumps(BUILD_ATTEMPTS))).replace("NONCE", nonce)
    files = {
        f"{package}/pyproject.toml": PYPROJECT.replace("NONCE", nonce),
        f"{package}/probe_backend.py": backend,
        # The sync builds the venv once the new commit is checked out: `current` names it then.
        "flows/requirements.txt": f"fleet-probe-{nonce} @ file:///opt/prefect/staging/current/{package}\n",
    }
    hosts = workers(lab)
    bound = 3 * int(lab.server["prefect_worker_sync_interval"]) + 60
    on_main = push(lab, tmp_path, "main", f"Require fleet-probe-{nonce}", files=files)
    try:
        reports = {}
        for host in hosts:
            written = wait_for(lambda host=host: read(lab, host, report_file), bound, f"the probe's build on {host}")
            reports[host] = json.loads(written[0])
        print("the build of a package pushed to main, against production:", reports)
        for host, report in reports.items():
            assert (report["user"], report["host"]) == ("prefect-staging", host)
            allowed = {
                what: got for what, _how, _path in BUILD_ATTEMPTS if not (got := report[what]).startswith("refused")
            }
            assert not allowed, f"the staging sync's build reached production on {host}: {allowed}"
            # The sync fails, visibly: the failed install is where the fleet's status reads it.
            error = wait_for(lambda host=host: failed_sync(lab, host), 120, f"{host}'s sync failed")[0]
            assert "'install'" in error, error
        for host in hosts:
            leftovers = lab.ssh(
                host,
                "ls -d /opt/prefect/production/venv/probe /opt/prefect/production/venv/lib/*/site-packages/probe.pth"
                " /opt/prefect/probe 2>/dev/null",
                check=False,
            ).stdout.split()
            assert leftovers == [], f"{host}: {leftovers}"
        (ran,) = wait(
            api, [start(api, "fleet-report", "fleet-report-production-atd-data02", "production", "atd-data02")], 180
        )
        assert ran.state == "COMPLETED", describe(lab, ran)
    finally:
        reverted = revert(lab, tmp_path, "main", on_main)
        settle(lab, "staging", reverted)
        for host in hosts:
            lab.ssh(host, f"rm -f {report_file}", check=False)


def read(lab, host: str, path: str) -> str:
    """The file at `path` on `host`; '' while there is none."""
    return lab.ssh(host, f"cat {path}", check=False).stdout.strip()


def failed_sync(lab, host: str) -> str:
    """Why staging's last sync on `host` failed, once a command in it failed; else ''."""
    text = read(lab, host, "/opt/prefect/staging/sync-error")
    return text if "non-zero exit status" in text else ""
