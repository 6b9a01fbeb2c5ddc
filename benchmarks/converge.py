"""Converge timings of site.yml on a lab fleet of its own, measured side by side in one run.

Prints: the fresh converge of a fleet shaped like the lab (a server, its PostgreSQL host and three
worker hosts; no Dask: the lab's swarm is this machine's engine, which a running lab holds); the
no-op converge of that fleet; the no-op converges with SSH pipelining and connection reuse
(ControlMaster/ControlPersist) off versus on, interleaved round by round so that the machine's
noise falls on both sides alike; then the same fleet grown to twelve worker hosts, and its no-op
converge, with the ratio 12 hosts / 3 hosts, in wall time and in the controller's CPU time (the
`ansible-playbook` process and everything it started: its workers, its SSH clients). Every host
here is a container on the controller's own cores, so the wall time of the 12-host fleet also pays
for twelve hosts' work and idle load on the same cores; the controller's CPU is what grows with a
real fleet, whose hosts are machines of their own. Numbers, not verdicts: this script never fails
on a timing.

Usage: make bench [BENCH_ROUNDS=3]   (needs the image and wheelhouse that `make bench` builds)
"""

from __future__ import annotations

import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from lab.ansible import playbook as run_playbook
from lab.inventory import ROOT, write_lab_inventory

NETWORK = "prefect-fleet-bench"


def workers(count: int) -> dict[str, dict]:
    """Worker hosts labelled as the lab's are: the flows' deployments target `atd-data02` and `etl`."""
    return {
        f"bench-data{n:02d}": {
            "ansible_host": f"172.30.79.{30 + n}",
            "fleet_labels": [f"bench-data{n:02d}", "etl"] + (["atd-data02"] if n == 1 else []),
        }
        for n in range(1, count + 1)
    }


def groups(worker_hosts: int) -> dict[str, dict[str, dict]]:
    return {
        "prefect_server": {"bench-prefect-01": {"ansible_host": "172.30.79.10"}},
        "prefect_database": {"bench-db-01": {"ansible_host": "172.30.79.11"}},
        "prefect_workers": workers(worker_hosts),
        "lab_git_remote": {"bench-git-01": {"ansible_host": "172.30.79.20"}},
    }


# Connection reuse off: no master connection, so every task opens its own SSH session.
REUSE_OFF = {"ANSIBLE_PIPELINING": "False", "ANSIBLE_SSH_ARGS": "-o ControlMaster=no -o ControlPersist=no"}


class Run(NamedTuple):
    wall: float  # seconds
    cpu: float  # the controller's CPU seconds


def children_cpu() -> float:
    """User and system CPU seconds of this process's children that have ended (and, through them,
    of their own children: ansible-playbook waits for its workers and SSH clients)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def ansible_playbook(inventory: Path, playbook: str, *args: str, env: dict[str, str] | None = None) -> Run:
    """Run a playbook (lab.ansible's way: no colour, the venv first); return its wall time and the
    controller's CPU time. Fails loudly, with its `fatal:` lines, if the playbook fails."""
    started, cpu = time.monotonic(), children_cpu()
    result = run_playbook(inventory, playbook, *args, check=False, env=env)
    run = Run(time.monotonic() - started, children_cpu() - cpu)
    if result.returncode != 0:
        failed = "\n".join(line for line in result.stdout.splitlines() if line.startswith(("fatal:", "failed:")))
        sys.exit(f"{playbook} failed:\n{failed[-3000:]}\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}")
    return run


def median(values: list[float]) -> str:
    return f"{statistics.median(values):7.1f} s   ({min(values):.1f}-{max(values):.1f})"


def ratio(a: list[float], b: list[float]) -> str:
    return f"{statistics.median(a) / statistics.median(b):7.2f}x"


def main() -> None:
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    image = (ROOT / ".cache" / "lab-image").read_text().strip()
    with tempfile.TemporaryDirectory() as tmp:
        inventory = write_lab_inventory(Path(tmp) / "bench", NETWORK, "172.30.79.0/24", groups(12))
        ansible_playbook(inventory, "lab/down.yml")
        try:
            inventory = write_lab_inventory(Path(tmp) / "bench", NETWORK, "172.30.79.0/24", groups(3))
            ansible_playbook(inventory, "lab/up.yml", "-e", f"lab_image={image}")
            ansible_playbook(inventory, "lab/git-remote.yml")
            fresh = ansible_playbook(inventory, "site.yml")
            on, off = [], []
            for _ in range(rounds):
                on.append(ansible_playbook(inventory, "site.yml"))
                off.append(ansible_playbook(inventory, "site.yml", env=REUSE_OFF))
            inventory = write_lab_inventory(Path(tmp) / "bench", NETWORK, "172.30.79.0/24", groups(12))
            ansible_playbook(inventory, "lab/up.yml", "-e", f"lab_image={image}")
            grow = ansible_playbook(inventory, "site.yml")
            twelve = [ansible_playbook(inventory, "site.yml") for _ in range(rounds)]
        finally:
            ansible_playbook(inventory, "lab/down.yml")

    wall = {name: [r.wall for r in runs] for name, runs in (("on", on), ("off", off), ("twelve", twelve))}
    cpu = {name: [r.cpu for r in runs] for name, runs in (("on", on), ("twelve", twelve))}
    print(f"converge timings of site.yml, {rounds} rounds each (median, min-max)")
    print("  a server, its database host, 3 worker hosts and the git remote:")
    print(
        f"    fresh converge                                 {fresh.wall:7.1f} s   (controller CPU {fresh.cpu:.1f} s)"
    )
    print(f"    no-op, pipelining + connection reuse on        {median(wall['on'])}")
    print(f"    no-op, pipelining + connection reuse off       {median(wall['off'])}")
    print(f"    ratio off/on (no-op, interleaved)              {ratio(wall['off'], wall['on'])}")
    print(f"    ratio no-op/fresh                              {statistics.median(wall['on']) / fresh.wall:7.2f}x")
    print(f"    no-op, the controller's CPU                    {median(cpu['on'])}")
    print("  the same fleet grown to 12 worker hosts:")
    print(f"    converge adding 9 worker hosts                 {grow.wall:7.1f} s   (controller CPU {grow.cpu:.1f} s)")
    print(f"    no-op                                          {median(wall['twelve'])}")
    print(f"    no-op, the controller's CPU                    {median(cpu['twelve'])}")
    print(f"    ratio no-op 12 hosts / 3 hosts, wall           {ratio(wall['twelve'], wall['on'])}")
    print(f"    ratio no-op 12 hosts / 3 hosts, controller CPU {ratio(cpu['twelve'], cpu['on'])}")


if __name__ == "__main__":
    main()
