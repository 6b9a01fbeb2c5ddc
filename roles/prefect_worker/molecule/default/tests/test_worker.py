"""Verify a converged prefect_worker: per environment a checkout at its branch's head, a venv, a
healthy worker running as the service user, a sync timer, and the pool and queues it polls in the API
(made by the prefect_objects role in the converge)."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import pytest

from lab.ansible import playbook, task_results
from tests.molecule_checks import HostApi

ENVIRONMENTS = {"production": ("production", 8081), "staging": ("main", 8082)}


def _api(host, path: str, body: dict | None = None):
    """The API as the worker sees it, with the credential of its 0600 settings file."""
    return HostApi(host, env_file="/etc/prefect-worker/production.env")("GET" if body is None else "POST", path, body)


@pytest.mark.parametrize("environment", sorted(ENVIRONMENTS))
def test_checkout_is_at_its_branch_head(worker, environment):
    branch = ENVIRONMENTS[environment][0]
    remote = worker.check_output(f"git --git-dir /srv/git/flows.git rev-parse {branch}")
    current = worker.check_output(f"git -c safe.directory='*' -C /opt/prefect/{environment}/current rev-parse HEAD")
    assert current == remote
    assert worker.file(f"/opt/prefect/{environment}/current").is_symlink
    assert worker.file(f"/opt/prefect/{environment}/venv/bin/prefect").exists


@pytest.mark.parametrize("environment", sorted(ENVIRONMENTS))
def test_each_environment_is_its_own_users_with_a_venv_of_its_own(worker, environment):
    """The same requirements in both branches, yet a venv per environment, in its own directory,
    which its user owns whole; the other environment's user can read none of it, nor its settings."""
    user, other = f"prefect-{environment}", f"prefect-{(set(ENVIRONMENTS) - {environment}).pop()}"
    venv = worker.check_output(f"readlink -f /opt/prefect/{environment}/venv")
    assert venv.startswith(f"/opt/prefect/{environment}/venvs/")
    assert not worker.file("/opt/prefect/_venvs").exists
    home = worker.file(f"/opt/prefect/{environment}")
    assert (home.user, home.group, home.mode) == (user, user, 0o750)
    assert worker.check_output(f"find /opt/prefect/{environment} ! -user {user} | head -3") == ""
    assert worker.user(user).shell == "/usr/sbin/nologin"
    for reading in (
        f"ls /opt/prefect/{environment}/current/flows",
        f"cat /etc/prefect-worker/{environment}.env",
        f"ls {venv}",
    ):
        tried = worker.run(f"runuser -u {other} -- {reading}")
        assert tried.rc != 0, (other, reading, tried.stdout)
        assert "Permission denied" in tried.stderr, (other, reading, tried.stderr)


@pytest.mark.parametrize("environment", sorted(ENVIRONMENTS))
def test_worker_runs_healthy_as_the_service_user(worker, environment):
    unit = f"prefect-worker@{environment}.service"
    assert worker.service(unit).is_running
    assert worker.service(unit).is_enabled
    assert worker.service(f"prefect-git-sync@{environment}.timer").is_running
    pid = worker.check_output(f"systemctl show -p MainPID --value {unit}")
    assert worker.check_output(f"ps -o user= -p {pid}") == f"prefect-{environment}"
    port = ENVIRONMENTS[environment][1]
    probe = f"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{port}/health').read().decode())"
    assert "OK" in worker.check_output(f"python3 -c {shlex.quote(probe)}")


@pytest.mark.parametrize("environment", sorted(ENVIRONMENTS))
def test_settings_file_is_private(worker, environment):
    env = worker.file(f"/etc/prefect-worker/{environment}.env")
    assert (env.user, env.group, env.mode) == ("root", "root", 0o600)
    assert 'PREFECT_SERVER_ALLOW_EPHEMERAL_MODE="false"' in env.content_string
    assert f'PREFECT_WORKER_WEBSERVER_PORT="{ENVIRONMENTS[environment][1]}"' in env.content_string


@pytest.mark.parametrize("environment", sorted(ENVIRONMENTS))
def test_the_index_credential_is_in_netrc_files_only_their_users_read(worker, environment):
    """Root's copy for the root-run installs, each environment's for its sync; NETRC names it."""
    secret = "molecule-index-secret-4321"
    root = worker.file("/opt/prefect-fleet/netrc")
    assert (root.user, root.mode) == ("root", 0o600)
    assert secret in root.content_string
    own = worker.file(f"/etc/prefect-worker/{environment}.netrc")
    assert (own.user, own.group, own.mode) == (f"prefect-{environment}", f"prefect-{environment}", 0o600)
    assert secret in own.content_string
    settings = worker.file(f"/etc/prefect-worker/{environment}.env").content_string
    assert f'NETRC="/etc/prefect-worker/{environment}.netrc"' in settings
    assert secret not in settings


@pytest.mark.parametrize("environment", sorted(ENVIRONMENTS))
def test_pool_and_queues_exist(worker, environment):
    pool = _api(worker, f"/work_pools/{environment}")
    assert pool["type"] == "process"
    props = pool["base_job_template"]["variables"]["properties"]
    assert props["working_dir"]["default"] == f"/opt/prefect/{environment}/current/flows"
    assert props["stream_output"]["default"] is False
    assert props["command"]["default"] == f"/opt/prefect/{environment}/venv/bin/python -m prefect.engine"
    for label in ("molecule-a", "molecule-shared"):
        assert _api(worker, f"/work_pools/{environment}/queues/{label}")["name"] == label


@pytest.mark.parametrize("environment", sorted(ENVIRONMENTS))
def test_a_stop_hands_the_runs_off_and_runs_send_heartbeats(worker, environment):
    """The unit stops its worker process alone, with SIGKILL (no cancellation of its runs), and its
    temporary files outlive a stop; flow runs send a heartbeat every 30 s."""
    unit = f"prefect-worker@{environment}.service"
    shown = worker.check_output(f"systemctl show -p KillMode -p KillSignal -p PrivateTmp -p Environment {unit}")
    assert "KillMode=process" in shown
    assert "KillSignal=9" in shown
    assert "PrivateTmp=no" in shown
    assert f"TMPDIR=/opt/prefect/{environment}/tmp" in shown
    assert worker.file(f"/opt/prefect/{environment}/tmp").user == f"prefect-{environment}"
    env = worker.file(f"/etc/prefect-worker/{environment}.env").content_string
    assert 'PREFECT_FLOWS_HEARTBEAT_FREQUENCY="30"' in env


def test_sync_unit_follows_a_new_commit(worker):
    worker.run_expect(
        [0],
        "set -e; seed=$(mktemp -d); git clone -q --branch production /srv/git/flows.git $seed; "
        "echo change > $seed/flows/CHANGE.md; git -C $seed add -A; "
        "git -C $seed -c user.name=m -c user.email=m@invalid commit -q -m change; "
        "git -C $seed push -q origin production",
    )
    # What playbooks/sync.yml runs: the sync unit, once more when the timer had begun a run before
    # the push (CI once saw the test's own `systemctl start` join such a run and return too early).
    synced = json.loads(worker.check_output("prefect-fleet sync production"))
    remote = worker.check_output("git --git-dir /srv/git/flows.git rev-parse production")
    current = worker.check_output("git -c safe.directory='*' -C /opt/prefect/production/current rev-parse HEAD")
    assert current == remote == synced["commit"]


def test_a_host_of_the_layout_before_is_handed_to_each_environments_user(worker):
    """Staging as a release before per-environment users left it: its directory `prefect`'s, its
    venv in the store the environments shared (with a stale one beside it), its worker stopped.
    The next converge gives the directory whole to prefect-staging, builds staging a venv of its
    own, removes the shared store and runs the worker as prefect-staging; production stays as it
    was."""
    venv = worker.check_output("readlink /opt/prefect/staging/venv")
    worker.run_expect(
        [0],
        "set -e; systemctl stop prefect-git-sync@staging.timer prefect-worker@staging.service; "
        f"mkdir -p /opt/prefect/_venvs/0123456789abcdef; mv {venv} /opt/prefect/_venvs/; "
        f"ln -sfn /opt/prefect/_venvs/{venv.rsplit('/', 1)[1]} /opt/prefect/staging/venv; "
        "rm -rf /opt/prefect/staging/venvs; chown -R prefect:prefect /opt/prefect/staging /opt/prefect/_venvs; "
        "chown prefect:prefect /opt/prefect; chmod 0750 /opt/prefect",
    )
    production = worker.check_output("find /opt/prefect/production -printf '%p %u %m\\n' | sort | sha256sum")
    converged = playbook(
        os.environ["MOLECULE_INVENTORY_FILE"],
        str(Path(__file__).resolve().parent.parent / "converge.yml"),
        "-e",
        "prefect_worker_full_converge=true",
        env={"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default"},
        cwd=Path.cwd(),
    )
    handed = [status for status, _host in task_results(converged.stdout, "prefect_worker", "Give each environment's")]
    assert handed == ["changed"], converged.stdout[-3000:]
    assert "item=staging" in converged.stdout.split("Give each environment's directory", 1)[1].split("TASK [", 1)[0]
    assert worker.check_output("find /opt/prefect/staging ! -user prefect-staging | head -3") == ""
    root = worker.file("/opt/prefect")
    assert (root.user, root.mode) == ("root", 0o755)
    assert worker.check_output("readlink -f /opt/prefect/staging/venv").startswith("/opt/prefect/staging/venvs/")
    assert not worker.file("/opt/prefect/_venvs").exists
    pid = worker.check_output("systemctl show -p MainPID --value prefect-worker@staging.service")
    assert worker.check_output(f"ps -o user= -p {pid}") == "prefect-staging"
    assert worker.check_output("find /opt/prefect/production -printf '%p %u %m\\n' | sort | sha256sum") == production
