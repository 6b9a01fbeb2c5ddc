"""No secret of the lab leaks: after a converge that migrates the database, no host has one in its
journal, in a process's command line, or in any world-readable file, and the converge's own output
shows none. The flows' secrets (Secret blocks from the vault) are in no file at all, whatever its
mode, and a flow that reads one leaves it in no log line and no API answer about its deployment
or run. The secrets reach the hosts' search on stdin, never on a command line."""

from __future__ import annotations

import hashlib
import json
import secrets as random
import shlex
from pathlib import Path

import pytest

from lab.ansible import playbook
from lab.fleet import deployment, settle, wait_for, wait_for_checkouts
from lab.flowruns import describe, start, wait
from lab.repo import push, remove
from tests.conftest import run

pytestmark = pytest.mark.lab

# Runs on each host, as root: reads {"secrets": {name: value}, "anywhere": [name, ...]} (JSON) on
# stdin, prints where each one was found. The secrets of "anywhere" may be in no file whatever its
# mode (outside installed packages); the others in no world-readable one.
SEARCH = r"""
import json, os, stat, subprocess, sys
given = json.load(sys.stdin)
secrets, anywhere = given["secrets"], set(given["anywhere"])
found = []
def scan(where, text, names=None):
    for name, value in secrets.items():
        if (names is None or name in names) and value in text:
            found.append(f"{name} in {where}")
journal = subprocess.run(["journalctl", "--no-pager", "--output", "verbose"], capture_output=True, text=True, errors="replace")
scan("the journal", journal.stdout)
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            scan(f"the command line of pid {pid}", f.read().replace(b"\0", b" ").decode(errors="replace"))
    except OSError:
        pass
files = 0
for top in ("/etc", "/opt", "/srv", "/var", "/home", "/root", "/tmp", "/run", "/usr/local"):
    for root, dirs, names in os.walk(top):
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(root, d))
                   and d not in ("_venvs", "venvs", "site-packages", "proc")]
        for name in names:
            path = os.path.join(root, name)
            try:
                st = os.lstat(path)
                readable = st.st_mode & stat.S_IROTH
                if not stat.S_ISREG(st.st_mode) or not (readable or anywhere) or st.st_size > 64 << 20:
                    continue
                with open(path, "rb") as f:
                    data = f.read()
            except OSError:
                continue
            files += 1
            scan(path, data.decode(errors="replace"), None if readable else anywhere)
print(json.dumps({"found": found, "files": files, "journal_lines": journal.stdout.count("\n")}))
"""


def flow_secrets(lab) -> dict[str, str]:
    """The flows' secrets of the lab's vault: environment -> the value of its lab-token."""
    state = Path(lab.server["lab_state_dir"]) / "secrets"
    return {env: (state / f"flow-{env}-lab-token").read_text().strip() for env in lab.server["fleet_environments"]}


def lab_secrets(lab) -> dict[str, str]:
    state = Path(lab.server["lab_state_dir"])
    auth = lab.server["prefect_server_auth_string"]
    key_lines = [line for line in (state / "deploy_key").read_text().splitlines() if not line.startswith("-----")]
    return {
        "the API auth password": auth.split(":", 1)[1],
        "the database password": (state / "secrets" / "database").read_text().strip(),
        # The package index's credential: root's netrc file, and each environment's user's copy.
        "the package index's password": (state / "secrets" / "index").read_text().strip(),
        # The body of the private deploy key: its longest line is unique to it.
        "the git deploy key": max(key_lines, key=len),
        # The server's TLS key, in its 0600 files only.
        "the server's TLS key": tls_key_line(lab, f"hosts/{lab.groups['prefect_server'][0]}.key"),
        # Each environment's Dask client key, in its user's 0600 file only.
        **{
            f"the {env} Dask client key": tls_key_line(lab, f"dask-{env}/client.key")
            for env in lab.server["fleet_dask_clusters"]
        },
    } | in_no_file(lab)


def tls_key_line(lab, name: str) -> str:
    """The base64 body of a key of the lab's fleet CA directory (one line: an EC key is short)."""
    lines = (Path(lab.server["fleet_tls_ca_dir"]) / name).read_text().splitlines()
    return max((line for line in lines if not line.startswith("-----")), key=len)


def in_no_file(lab) -> dict[str, str]:
    """Secrets that no host holds in any file, whatever its mode: the flows' Secret blocks and the
    notification's webhook token live in the Prefect database only (encrypted there); the fleet CA's
    key on the controller only."""
    state = Path(lab.server["lab_state_dir"]) / "secrets"
    return {f"the {env} flows' lab-token (in no file)": value for env, value in flow_secrets(lab).items()} | {
        "the webhook token (in no file)": (state / "webhook-token").read_text().strip(),
        # The fleet CA's key stays on the controller; the Dask clusters' CA keys too, and their
        # schedulers' and workers' keys are the swarm's secrets, on no fleet host.
        "the fleet CA's key (in no file)": tls_key_line(lab, "ca.key"),
        **{
            f"the {cluster} Dask {what} key (in no file)": tls_key_line(lab, f"dask-{cluster}/{what}.key")
            for cluster in lab.server["fleet_dask_clusters"]
            for what in ("ca", "scheduler", "worker")
        },
    }


def test_no_secret_in_journals_command_lines_or_world_readable_files(lab):
    secrets = lab_secrets(lab)
    assert all(len(value) >= 16 for value in secrets.values()), "the lab's secrets are long random strings"
    server = lab.groups["prefect_server"][0]
    # A converge that migrates: forget the migration marker, converge, and see the migration run.
    # The server and database tiers: the secrets of the migration pass there; every host's journal
    # and files below also hold what `make lab`, which converged every host, put there.
    lab.ssh(server, "rm -f /var/lib/prefect-server/.migrated-*")
    converge = playbook(lab.inventory, "site.yml", "--limit", "prefect_server:prefect_database", timeout=1800)
    assert converge.returncode == 0, converge.stdout[-4000:]
    assert "Run the migration unit and wait for it to finish" in converge.stdout
    assert lab.ssh(server, "ls /var/lib/prefect-server/.migrated-*").returncode == 0
    ran = lab.ssh(
        server, "journalctl -u prefect-server-migrate.service --no-pager -o cat | grep -c 'Started\\|Finished'"
    )
    assert int(ran.stdout.strip()) >= 1
    for name, value in secrets.items():
        assert value not in converge.stdout + converge.stderr, f"{name} is in the converge's output"

    for host in lab.hosts:
        given = {"secrets": secrets, "anywhere": [name for name in secrets if "(in no file)" in name]}
        result = lab.ssh(host, "python3 -c " + shlex.quote(SEARCH), input=json.dumps(given), timeout=600)
        report = json.loads(result.stdout)
        assert report["files"] > 1000, f"{host}: the search saw too few files: {report}"
        assert report["journal_lines"] > 100, f"{host}: the search saw too little journal: {report}"
        assert report["found"] == [], f"{host}: {report['found']}"


def test_no_secret_in_the_dask_services_logs(lab):
    """The flows' Prefect settings, the API's auth string among them, travel to the Dask cluster
    with each task (prefect-dask sends the run's context): none may reach a service's log.

    Read per container (`docker logs`), current and earlier tasks alike: `docker service logs`
    was seen to hang past two minutes on a service whose tasks had been rolled."""
    services = run(
        ["docker", "service", "ls", "--filter", "label=org.prefect-fleet.dask-cluster", "--format", "{{.Name}}"]
    ).stdout.split()
    assert services, "the lab runs no Dask service"
    secrets = lab_secrets(lab)
    for service in services:
        containers = run(
            ["docker", "ps", "-a", "-q", "--filter", f"label=com.docker.swarm.service.name={service}"]
        ).stdout.split()
        assert containers, f"{service} has no container"
        text = ""
        for container in containers:
            logs = run(["docker", "logs", container], timeout=120)
            assert logs.returncode == 0, logs.stderr
            text += logs.stdout + logs.stderr
        assert text, f"{service} logged nothing"
        for name, value in secrets.items():
            assert value not in text, f"{name} is in the logs of {service}"


READER = '''"""Reads its environment's lab-token, as a flow reads a secret; reports only its digest."""

import hashlib
import json

from fleet_secrets import block_name, secret
from prefect import flow, get_run_logger


@flow(name="{flow}")
def read_secret() -> dict:
    value = secret("lab-token")
    report = {{"block": block_name("lab-token"), "sha256": hashlib.sha256(value.encode()).hexdigest()}}
    get_run_logger().info("FLEET_REPORT %s", json.dumps(report))
    return report
'''


def test_a_flow_reads_its_environments_secret_block_and_the_value_is_in_no_log_or_api_answer(lab, tmp_path):
    api = lab.api
    value = flow_secrets(lab)["staging"]
    nonce = random.token_hex(3)
    name, flow, path = f"secret-{nonce}", f"read-secret-{nonce}", f"flows/pushed/secret_{nonce}.py"
    entry = f"  - name: {name}\n    entrypoint: pushed/secret_{nonce}.py:read_secret\n    labels: [atd-data04]\n"
    commit = push(
        lab, tmp_path, "main", f"Add {flow}", files={path: READER.format(flow=flow), "flows/deployments.yml": entry}
    )
    deployment_name = f"{name}-staging-atd-data04"
    bound = 3 * int(lab.server["prefect_worker_sync_interval"]) + 60  # an outage, far above any sync
    try:
        deployment, _ = wait_for(
            lambda: _deployment(api, flow, deployment_name, commit), bound, f"{deployment_name} at {commit[:12]}"
        )
        # The deployment exists once the registering host (atd-data02) has the commit; atd-data04's
        # checkout may lag a sync interval (docs/deployments.md), and a run it took then would
        # crash on the missing file (and be retried by the fleet's automation).
        wait_for_checkouts(lab, "staging", commit, bound)
        (ran,) = wait(api, [start(api, flow, deployment_name, "staging", "atd-data04")], timeout=180)
        assert ran.state == "COMPLETED", describe(lab, ran)
        assert ran.report == {"block": "staging-lab-token", "sha256": hashlib.sha256(value.encode()).hexdigest()}
        answers = {
            "the deployment": api.call("GET", f"/deployments/{deployment['id']}"),
            "the flow run": api.call("GET", f"/flow_runs/{ran.id}"),
            "the flow run's logs": api.call("POST", "/logs/filter", {"logs": {"flow_run_id": {"any_": [ran.id]}}}),
            "the task runs": api.call("POST", "/task_runs/filter", {"flow_runs": {"id": {"any_": [ran.id]}}}),
            "the block, as the UI reads it": api.call(
                "GET", "/block_types/slug/secret/block_documents/name/staging-lab-token"
            ),
        }
        assert answers["the flow run's logs"], "the run logged nothing"
        for what, answer in answers.items():
            assert value not in json.dumps(answer), f"the secret is in {what}"
    finally:
        settle(lab, "staging", remove(lab, tmp_path, "main", name, path))


def _deployment(api, flow: str, name: str, version: str):
    found = deployment(api, flow, name)
    return found if found and found["version"] == version else None
