"""Converge timings of site.yml on a lab fleet of its own, measured side by side in one run.

Prints: the fresh converge time; the no-op converge time; and no-op converges with SSH pipelining
and connection reuse (ControlMaster/ControlPersist) off versus on, interleaved round by round so
that the machine's noise falls on both sides alike, with their ratio. Numbers, not verdicts: this
script never fails on a timing.

Usage: make bench [BENCH_ROUNDS=5]   (needs the image and wheelhouse that `make bench` builds)
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lab.inventory import ROOT, write_lab_inventory

BIN = Path(sys.executable).parent
NETWORK = "prefect-fleet-bench"
GROUPS = {
    "prefect_server": {"bench-prefect-01": {"ansible_host": "172.30.79.10"}},
    "prefect_workers": {"bench-data01": {"ansible_host": "172.30.79.11", "fleet_labels": ["bench-data01"]}},
    "lab_git_remote": {"bench-git-01": {"ansible_host": "172.30.79.20"}},
}
# Connection reuse off: no master connection, so every task opens its own SSH session.
REUSE_OFF = {"ANSIBLE_PIPELINING": "False", "ANSIBLE_SSH_ARGS": "-o ControlMaster=no -o ControlPersist=no"}


def ansible_playbook(inventory: Path, playbook: str, *args: str, env: dict[str, str] | None = None) -> float:
    """Run a playbook; return its wall time in seconds. Fails loudly if the playbook fails."""
    started = time.monotonic()
    result = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(inventory), playbook, *args],
        cwd=ROOT,
        env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "ANSIBLE_NOCOLOR": "1", **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        sys.exit(f"{playbook} failed:\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}")
    return elapsed


def main() -> None:
    rounds = int(os.environ.get("BENCH_ROUNDS", "5"))
    image = (ROOT / ".cache" / "lab-image").read_text().strip()
    with tempfile.TemporaryDirectory() as tmp:
        inventory = write_lab_inventory(Path(tmp) / "bench", NETWORK, "172.30.79.0/24", GROUPS)
        ansible_playbook(inventory, "lab/down.yml")
        try:
            ansible_playbook(inventory, "lab/up.yml", "-e", f"lab_image={image}")
            ansible_playbook(inventory, "lab/git-remote.yml")
            fresh = ansible_playbook(inventory, "site.yml")
            on, off = [], []
            for _ in range(rounds):
                on.append(ansible_playbook(inventory, "site.yml"))
                off.append(ansible_playbook(inventory, "site.yml", env=REUSE_OFF))
        finally:
            ansible_playbook(inventory, "lab/down.yml")

    hosts = sum(len(h) for h in GROUPS.values())
    print(f"converge timings of site.yml, {hosts} lab hosts, {rounds} interleaved rounds (median, min-max)")
    print(f"  fresh converge                               {fresh:7.1f} s")
    for label, values in (
        ("no-op, pipelining + connection reuse on ", on),
        ("no-op, pipelining + connection reuse off", off),
    ):
        print(f"  {label}     {statistics.median(values):7.1f} s   ({min(values):.1f}-{max(values):.1f})")
    print(f"  ratio off/on (no-op)                         {statistics.median(off) / statistics.median(on):7.2f}x")


if __name__ == "__main__":
    main()
