"""docker_swarm installs Debian's engine on both hosts, initialises the swarm on the manager and
joins the worker; bad input fails before any change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.molecule_checks import assert_rejected_without_change, other_messages, scenario_host

CONVERGE = Path(__file__).resolve().parent.parent / "converge.yml"
# The swarm's own state, and every file a role writes except Docker's data (which moves on its own).
STATE = (
    "docker node ls --format '{{.Hostname}} {{.ManagerStatus}}' 2>/dev/null | sort; docker info --format '{{.Swarm.LocalNodeState}}';"
    " find /etc /opt /usr/local -xdev -printf '%p %T@ %s\\n' | sort | sha256sum"
)


@pytest.fixture(scope="module")
def manager():
    return scenario_host("dask_swarm_managers")


@pytest.fixture(scope="module")
def worker():
    return scenario_host("dask_swarm_workers")


def test_engine_runs_from_debian_packages(manager, worker):
    for host in (manager, worker):
        assert host.package("docker.io").is_installed
        assert host.service("docker").is_running
        assert host.service("docker").is_enabled


def test_the_manager_leads_and_the_worker_joined(manager, worker):
    nodes = [json.loads(line) for line in manager.check_output("docker node ls --format '{{json .}}'").splitlines()]
    assert sorted(n["Hostname"] for n in nodes) == ["swarm-manager", "swarm-worker"]
    assert all(n["Status"] == "Ready" for n in nodes), nodes
    roles = {n["Hostname"]: n["ManagerStatus"] for n in nodes}
    assert roles == {"swarm-manager": "Leader", "swarm-worker": ""}
    assert (
        worker.check_output("docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}'")
        == "active false"
    )


def test_nodes_carry_their_labels(manager):
    for name in ("swarm-manager", "swarm-worker"):
        labels = json.loads(manager.check_output(f"docker node inspect {name} --format '{{{{json .Spec.Labels}}}}'"))
        assert labels == {"molecule": name}


CASES = {
    "no-advertise-address": (
        {"docker_swarm_advertise_addr": ""},
        "docker_swarm_advertise_addr of swarm-manager is empty",
    ),
    "even-managers": (
        {"docker_swarm_managers_group": "all"},
        "group all has 2 managers; Raft needs an odd number",
    ),
    "daemon-options-not-a-mapping": (
        {"docker_swarm_daemon_options": "log-driver=journald"},
        "docker_swarm_daemon_options must be a mapping",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_fails_before_any_change(manager, case):
    extra, message = CASES[case]
    assert_rejected_without_change(manager, CONVERGE, extra, message, other_messages(CASES, case), state=STATE)
