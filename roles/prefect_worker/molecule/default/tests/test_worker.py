"""Verify a converged prefect_worker: per environment a checkout at its branch's head, a venv, a
healthy worker running as the service user, a sync timer, and the pool and queues it polls in the API
(made by the prefect_objects role in the converge)."""

from __future__ import annotations

import json
import shlex

import pytest

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


def test_environments_with_the_same_requirements_share_one_venv(worker):
    """Both branches carry the same requirements: one venv in the host's store, built once."""
    venvs = {worker.check_output(f"readlink -f /opt/prefect/{environment}/venv") for environment in ENVIRONMENTS}
    assert len(venvs) == 1, venvs
    venv = venvs.pop()
    assert venv.startswith("/opt/prefect/_venvs/")
    assert worker.check_output("ls /opt/prefect/_venvs").split() == [venv.rsplit("/", 1)[1]]


@pytest.mark.parametrize("environment", sorted(ENVIRONMENTS))
def test_worker_runs_healthy_as_the_service_user(worker, environment):
    unit = f"prefect-worker@{environment}.service"
    assert worker.service(unit).is_running
    assert worker.service(unit).is_enabled
    assert worker.service(f"prefect-git-sync@{environment}.timer").is_running
    pid = worker.check_output(f"systemctl show -p MainPID --value {unit}")
    assert worker.check_output(f"ps -o user= -p {pid}") == "prefect"
    port = ENVIRONMENTS[environment][1]
    probe = f"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{port}/health').read().decode())"
    assert "OK" in worker.check_output(f"python3 -c {shlex.quote(probe)}")


@pytest.mark.parametrize("environment", sorted(ENVIRONMENTS))
def test_settings_file_is_private(worker, environment):
    env = worker.file(f"/etc/prefect-worker/{environment}.env")
    assert env.mode == 0o600
    assert env.user == "prefect"
    assert 'PREFECT_SERVER_ALLOW_EPHEMERAL_MODE="false"' in env.content_string
    assert f'PREFECT_WORKER_WEBSERVER_PORT="{ENVIRONMENTS[environment][1]}"' in env.content_string


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
    assert worker.file(f"/opt/prefect/{environment}/tmp").user == "prefect"
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
