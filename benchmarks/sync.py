"""Sync on push on the lab fleet (`make lab` first), with playbooks/sync.yml and with the timer alone.

  python -m benchmarks.sync [ROUNDS] [INVENTORY]

Each round pushes one commit to `main` (staging) and measures, from the moment the push returned:
every staging checkout at the new commit (each host waits for it in a loop of its own, started
before the push), and the staging deployments registered from it (the deployments' version, read
from the API every 0.2 s). Rounds alternate between the two ways, so that both meet the same
machine: "playbook" runs playbooks/sync.yml -e branch=main right after the push, "timer" waits
for the sync timer (prefect_worker_sync_interval). Printed: p50/p95/max of both delays per way,
and the ratio of the medians. Numbers, not verdicts: nothing here fails on a timing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
from pathlib import Path

from benchmarks.stats import percentile
from lab.fleet import Lab
from lab.inventory import ROOT

BIN = Path(sys.executable).parent
ENVIRONMENT, BRANCH = "staging", "main"
PROBE = ("fleet-report", "fleet-report-staging-atd-data02")


def wait_for_checkout(lab: Lab, host: str, commit: str, arrived: dict[str, float], bound: float) -> None:
    """Block until `host`'s checkout points at `commit` (a loop on the host, so no SSH per poll)."""
    lab.ssh(
        host,
        f"for i in $(seq {int(bound * 20)}); do readlink /opt/prefect/{ENVIRONMENT}/current | grep -q /{commit}- && exit 0;"
        " sleep 0.05; done; exit 1",
        timeout=bound + 30,
    )
    arrived[host] = time.monotonic()


def deployed_version(lab: Lab) -> str | None:
    try:
        return lab.api.call("GET", f"/deployments/name/{PROBE[0]}/{PROBE[1]}")["version"]
    except urllib.error.HTTPError:
        return None


def round_trip(lab: Lab, repo: Path, git: list[str], index: int, way: str, bound: float) -> tuple[float, float]:
    (repo / "flows" / "BENCH-SYNC.md").write_text(f"round {index} ({way}) at {time.time()}\n")
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", f"bench sync {index} ({way})"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    arrived: dict[str, float] = {}
    waiters = [
        threading.Thread(target=wait_for_checkout, args=(lab, host, commit, arrived, bound))
        for host in lab.groups["prefect_workers"]
    ]
    for waiter in waiters:
        waiter.start()
    time.sleep(1)  # the waiters' SSH sessions are up before the push
    subprocess.run([*git, "push", "-q", "origin", BRANCH], env=lab.git_env(), check=True)
    pushed = time.monotonic()
    playbook = None
    if way == "playbook":
        playbook = subprocess.Popen(
            [str(BIN / "ansible-playbook"), "-i", lab.inventory, "playbooks/sync.yml", "-e", f"branch={BRANCH}"],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"},
        )
    deployed = None
    while time.monotonic() - pushed < bound:
        if deployed_version(lab) == commit:
            deployed = time.monotonic() - pushed
            break
        time.sleep(0.2)
    for waiter in waiters:
        waiter.join()
    if playbook is not None and playbook.wait() != 0:
        sys.exit(f"round {index}: playbooks/sync.yml failed")
    missing = set(lab.groups["prefect_workers"]) - set(arrived)
    if missing or deployed is None:
        sys.exit(f"round {index} ({way}): {commit[:12]} not everywhere within {bound:.0f} s: {sorted(missing)}")
    return max(arrived.values()) - pushed, deployed


def main(rounds: int, inventory: str) -> None:
    lab = Lab.of(inventory)
    interval = int(lab.server["prefect_worker_sync_interval"])
    bound = 3 * interval + 60
    results: dict[str, dict[str, list[float]]] = {w: {"checkouts": [], "deployment": []} for w in ("timer", "playbook")}
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "flows"
        subprocess.run(
            ["git", "clone", "-q", "--branch", BRANCH, lab.server["fleet_flows_repo"], str(repo)],
            env=lab.git_env(),
            check=True,
        )
        git = ["git", "-C", str(repo), "-c", "user.name=bench", "-c", "user.email=bench@prefect-fleet.invalid"]
        for index in range(2 * rounds):
            way = ("timer", "playbook")[index % 2]
            checkouts, deployment = round_trip(lab, repo, git, index, way, bound)
            results[way]["checkouts"].append(checkouts)
            results[way]["deployment"].append(deployment)
            print(
                f"  round {index + 1:2d} {way:8s}  checkouts {checkouts:6.2f} s   deployment {deployment:6.2f} s",
                flush=True,
            )
    hosts = len(lab.groups["prefect_workers"])
    print(f"\npush -> every {ENVIRONMENT} checkout ({hosts} hosts) / the {ENVIRONMENT} deployments at the new commit;")
    print(f"sync timer every {interval} s; {rounds} rounds per way, alternating")
    print(f"{'way':10s} {'':12s} {'p50':>7s} {'p95':>7s} {'max':>7s}")
    for way, series in results.items():
        for what, values in series.items():
            print(
                f"{way:10s} {what:12s} {percentile(values, 0.5):7.2f} {percentile(values, 0.95):7.2f} {max(values):7.2f}"
            )
    for what in ("checkouts", "deployment"):
        ratio = percentile(results["timer"][what], 0.5) / percentile(results["playbook"][what], 0.5)
        print(f"{what}: the playbook's median is {ratio:.1f}x shorter than the timer's")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5, sys.argv[2] if len(sys.argv) > 2 else "inventories/lab")
