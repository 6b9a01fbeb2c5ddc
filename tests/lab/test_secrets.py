"""No secret of the lab leaks: after a converge that migrates the database, no host has one in its
journal, in a process's command line, or in any world-readable file, and the converge's own output
shows none. The secrets reach the hosts' search on stdin, never on a command line."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from tests.conftest import run

pytestmark = pytest.mark.lab

# Runs on each host, as root: reads the secrets (JSON) on stdin, prints where each one was found.
SEARCH = r"""
import json, os, stat, subprocess, sys
secrets = json.load(sys.stdin)
found = []
def scan(where, text):
    for name, value in secrets.items():
        if value in text:
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
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(root, d))]
        for name in names:
            path = os.path.join(root, name)
            try:
                st = os.lstat(path)
                if not stat.S_ISREG(st.st_mode) or not st.st_mode & stat.S_IROTH:
                    continue
                with open(path, "rb") as f:
                    data = f.read()
            except OSError:
                continue
            files += 1
            scan(path, data.decode(errors="replace"))
print(json.dumps({"found": found, "files": files, "journal_lines": journal.stdout.count("\n")}))
"""


def lab_secrets(lab) -> dict[str, str]:
    state = Path(lab.server["lab_state_dir"])
    auth = lab.server["prefect_server_auth_string"]
    key_lines = [line for line in (state / "deploy_key").read_text().splitlines() if not line.startswith("-----")]
    return {
        "the API auth password": auth.split(":", 1)[1],
        "the database password": (state / "secrets" / "database").read_text().strip(),
        # The body of the private deploy key: its longest line is unique to it.
        "the git deploy key": max(key_lines, key=len),
    }


def test_no_secret_in_journals_command_lines_or_world_readable_files(lab):
    secrets = lab_secrets(lab)
    assert all(len(value) >= 16 for value in secrets.values()), "the lab's secrets are long random strings"
    server = lab.groups["prefect_server"][0]
    # A converge that migrates: forget the migration marker, converge, and see the migration run.
    # The server and database tiers: the secrets of the migration pass there; every host's journal
    # and files below also hold what `make lab`, which converged every host, put there.
    lab.ssh(server, "rm -f /var/lib/prefect-server/.migrated-*")
    converge = run(
        ["ansible-playbook", "-i", lab.inventory, "site.yml", "--limit", "prefect_server:prefect_database"],
        timeout=1800,
    )
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
        result = lab.ssh(host, "python3 -c " + shlex.quote(SEARCH), input=json.dumps(secrets), timeout=600)
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
