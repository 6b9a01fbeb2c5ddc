"""dask_swarm builds the image on every node, runs the cluster's scheduler and workers as swarm
services that answer their health checks and compute, and refuses bad input before any change."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lab.ansible import playbook
from tests.molecule_checks import assert_rejected_without_change, other_messages, scenario_host

ROOT = Path(__file__).resolve().parents[5]
CONVERGE = Path(__file__).resolve().parent.parent / "converge.yml"
READY = Path(__file__).resolve().parent.parent / "ready.yml"
RECORD = "/var/lib/dask-swarm/converged.json"
# What the role may change: services (their spec versions), images, networks, build contexts.
STATE = (
    "docker service ls --format '{{.Name}}' | sort | xargs -r docker service inspect --format '{{.Spec.Name}} {{.Version.Index}}';"
    " docker image ls --format '{{.Repository}}:{{.Tag}} {{.ID}}' | sort; docker network ls --format '{{.Name}}' | sort;"
    " ls -R /var/lib/dask-swarm 2>/dev/null"
)


@pytest.fixture(scope="module")
def manager():
    return scenario_host("dask_swarm_managers")


@pytest.fixture(scope="module")
def worker():
    return scenario_host("dask_swarm_workers")


def http_get(host, path: str) -> str:
    """GET a path of the scheduler's published HTTP port, on the host (which has no curl)."""
    script = f"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8787{path}', timeout=10).read().decode())"
    return host.check_output(f'python3 -c "{script}"')


def counts(host) -> dict:
    return json.loads(http_get(host, "/json/counts.json"))


def test_every_node_has_the_same_image(manager, worker):
    tags = [host.check_output("docker image ls fleet-dask --format '{{.Tag}}'").split() for host in (manager, worker)]
    assert len(tags[0]) == 1, tags
    assert tags[0] == tags[1], tags
    service_image = manager.check_output(
        "docker service inspect dask-molecule-worker --format '{{.Spec.TaskTemplate.ContainerSpec.Image}}'"
    )
    assert service_image == f"fleet-dask:{tags[0][0]}"


def test_scheduler_answers_and_every_worker_joined(manager):
    assert http_get(manager, "/health") == "ok"
    assert counts(manager)["workers"] == 2


def test_workers_are_healthy_and_spread_over_the_nodes(manager):
    tasks = manager.check_output(
        "docker service ps dask-molecule-worker --filter desired-state=running --format '{{.Node}} {{.CurrentState}}'"
    ).splitlines()
    assert len(tasks) == 2, tasks
    assert all("Running" in t for t in tasks), tasks
    assert sorted(t.split()[0] for t in tasks) == ["dask-manager", "dask-worker"], tasks


def test_the_cluster_computes_on_both_workers(manager):
    # A client inside the scheduler's container, on the image's own Python and distributed.
    script = (
        "from distributed import Client; import socket;"
        "c = Client('tcp://127.0.0.1:8786', timeout=30);"
        "hosts = c.gather(c.map(lambda i: socket.gethostname(), range(40), pure=False));"
        "print(sorted(set(hosts)), sum(c.gather(c.map(lambda i: i * i, range(100)))))"
    )
    container = manager.check_output(
        "docker ps -q --filter label=com.docker.swarm.service.name=dask-molecule-scheduler"
    )
    out = manager.check_output(f'docker exec {container} /opt/dask/bin/python -c "{script}"')
    assert out.endswith(" 328350"), out
    assert "dask-molecule-worker-1" in out, out
    assert "dask-molecule-worker-2" in out, out


def test_workers_stop_gracefully(manager):
    spec = json.loads(manager.check_output("docker service inspect dask-molecule-worker --format '{{json .Spec}}'"))
    container = spec["TaskTemplate"]["ContainerSpec"]
    assert container["StopSignal"] == "SIGUSR1"
    assert container["Args"][container["Args"].index("--preload") + 1] == "fleet_dask_retire"
    assert spec["UpdateConfig"]["Parallelism"] == 1
    assert spec["UpdateConfig"]["FailureAction"] == "rollback"


CASES = {
    "no-replicas": ({"dask_swarm_worker_replicas": 0}, "dask_swarm_worker_replicas must be at least 1"),
    "cluster-without-replicas": (
        {"dask_swarm_clusters": {"molecule": {"worker_replicas": 0}}},
        "dask_swarm_worker_replicas must be at least 1 for every cluster; below 1: molecule",
    ),
    "memory-not-a-size": (
        {"dask_swarm_worker_memory_limit": "lots"},
        "dask_swarm_worker_memory_limit must be a size of at least 256MiB such as 2GiB, 1536M or 4G, got 'lots'",
    ),
    "two-clusters-one-port": (
        {"dask_swarm_clusters": {"molecule": {}, "other": {"dashboard_port": 8786, "scheduler_port": 8788}}},
        "port 8786 is used twice",
    ),
    "port-of-another-service": (
        {"dask_swarm_clusters": {"molecule": {"scheduler_port": 18786}}},
        "clash with other swarm services: molecule-other publishes 18786",
    ),
    "base-image-missing": (
        {"dask_swarm_base_image": "no-such-image:1"},
        "dask_swarm_base_image 'no-such-image:1' does not exist on dask-manager",
    ),
    "distributed-differs-from-the-venvs": (
        {"dask_swarm_distributed_version": "2025.1.0"},
        "dask_swarm_distributed_version 2025.1.0 differs from distributed",
    ),
    # The client's Python comes from a stand-in that reports another version (prepare.yml).
    "python-differs-from-the-clients": (
        {"dask_swarm_client_hosts": ["dask-manager"], "dask_swarm_client_python": "/usr/local/bin/python-3.9-stand-in"},
        "but dask-manager runs Python 3.9.2",
    ),
    "dnsrr-through-the-ingress-mesh": (
        {"dask_swarm_publish_mode": "ingress"},
        "dask_swarm_endpoint_mode dnsrr cannot publish ports through the ingress mesh",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_fails_before_any_change(manager, case):
    extra, message = CASES[case]
    assert_rejected_without_change(manager, CONVERGE, extra, message, other_messages(CASES, case), state=STATE)


def test_constraints_that_pin_no_uv_are_refused_before_any_change(manager, tmp_path):
    """The image's venv is built by uv at the constraints' pin: a constraints file without one
    (every other pin kept) is refused before any build."""
    for source in (ROOT / "constraints").glob("prefect-*.txt"):
        kept = [line for line in source.read_text().splitlines() if not line.startswith("uv==")]
        (tmp_path / source.name).write_text("\n".join(kept) + "\n")
    assert_rejected_without_change(
        manager,
        CONVERGE,
        {"dask_swarm_constraints_dir": str(tmp_path)},
        "pins no uv (a line uv==<version>): the image's venv is built with it",
        other_messages({**CASES, "no-uv": ({}, "pins no uv")}, "no-uv"),
        state=STATE,
    )


def test_a_deferred_wait_that_fails_names_the_cluster_and_forgets_the_converge(manager):
    """site.yml waits for the workers in its last play, after the role recorded its full converge:
    when they do not join, that wait fails naming the cluster and removes the record, so that
    the next run converges the cluster in full instead of skipping it as current. (Asked for
    three workers, the cluster has two.)"""
    manager.check_output(f"cp -p {RECORD} {RECORD}.kept")
    try:
        result = playbook(
            os.environ["MOLECULE_INVENTORY_FILE"],
            str(READY),
            "-e",
            json.dumps({"dask_swarm_clusters": {"molecule": {"worker_replicas": 3}}, "dask_swarm_ready_timeout": 4}),
            check=False,
            env={"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default"},
            cwd=Path.cwd(),
        )
        output = " ".join((result.stdout + result.stderr).split())
        assert result.returncode != 0, result.stdout[-3000:]
        assert "Not every worker of the Dask clusters molecule joined its scheduler within 4 s" in output, output[
            -3000:
        ]
        assert not manager.file(RECORD).exists
    finally:
        manager.check_output(f"mv -f {RECORD}.kept {RECORD}")
