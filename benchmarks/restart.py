"""The rolling restart on the lab fleet (`make lab` first), measured under load in one run.

  python -m benchmarks.restart [INVENTORY]

Runs of a 30 s flow arrive every 4 s on the queues `etl` (two hosts) and `atd-data04` throughout
(every 2 s is more than the lab's two cores start: runs then queue Late, and pickup measures the
backlog rather than the restart).
Three windows, one after another: 60 s with no restart, a rolling restart of every worker host
(hand-off: the default), and a rolling restart with `-e drain=true` (each host waits for its runs
in flight to end before its workers restart). Printed: per host and mode, the drain wait and the
restart (restart, /health, ONLINE) separately, from the playbook's own task timings (the
ansible.posix.json callback); and submit -> Running of the runs submitted in each window, from the
server's state timestamps. Every run must end Completed in one attempt; the script says if not.
Numbers, not verdicts: nothing here fails on a timing.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from benchmarks.stats import percentile
from lab.ansible import json_report
from lab.fleet import Lab
from lab.inventory import ROOT
from lab.load import Load, unclean

BIN = Path(sys.executable).parent
DRAIN_TASKS = ("Drain, 1/3", "Drain, 2/3")
RESTART_TASKS = ("Restart each chosen worker", "Wait for each restarted worker", "Wait until each restarted worker")


def seconds(duration: dict) -> float:
    start, end = (datetime.fromisoformat(duration[key].replace("Z", "+00:00")) for key in ("start", "end"))
    return (end - start).total_seconds()


def rolling_restart(lab: Lab, *extra: str) -> tuple[dict[str, dict[str, float]], float, float]:
    """Run the worker tier's rolling restart; per host {drain, restart} seconds; the window."""
    began = time.time()
    result = subprocess.run(
        [
            str(BIN / "ansible-playbook"),
            "-i",
            lab.inventory,
            "playbooks/rolling_restart.yml",
            "--limit",
            "prefect_workers",
            *extra,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "PATH": f"{BIN}:{os.environ['PATH']}",
            "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
        },
        check=False,
    )
    ended = time.time()
    if result.returncode != 0:
        raise SystemExit(f"rolling restart failed:\n{result.stdout[-4000:]}{result.stderr[-2000:]}")
    # The JSON document, without what other callbacks (ansible.cfg's profile_tasks) print around it.
    report = json_report(result.stdout)
    per_host: dict[str, dict[str, float]] = {}
    for play in report["plays"]:
        for task in play["tasks"]:
            name = task["task"]["name"]
            for host, outcome in task["hosts"].items():
                if outcome.get("skipped"):
                    continue
                slot = per_host.setdefault(host, {"drain": 0.0, "restart": 0.0})
                if any(part in name for part in DRAIN_TASKS):
                    slot["drain"] += seconds(task["task"]["duration"])
                elif any(part in name for part in RESTART_TASKS):
                    slot["restart"] += seconds(task["task"]["duration"])
    return {h: t for h, t in per_host.items() if h in lab.groups["prefect_workers"]}, began, ended


def line(values: list[float]) -> str:
    if not values:
        return "no runs"
    return f"p50 {statistics.median(values):5.2f} s   p95 {percentile(values, 0.95):5.2f} s   max {max(values):5.2f} s   (n={len(values)})"


def main(inventory: str) -> None:
    lab = Lab.of(inventory)
    api = lab.api
    deployment = api.call("GET", "/deployments/name/fleet-report/etl-report-production-etl")["id"]
    windows: dict[str, tuple[float, float]] = {}
    timings: dict[str, dict[str, dict[str, float]]] = {}
    with Load(api, deployment, ["etl", "atd-data04", "etl"], every=4.0) as load:
        time.sleep(15)
        windows["outside (no restart)"] = (time.time(), time.time() + 60)
        time.sleep(60)
        timings["hand-off"], *windows["during hand-off restart"] = rolling_restart(lab)
        time.sleep(5)
        timings["drain"], *windows["during drain restart"] = rolling_restart(lab, "-e", "drain=true")
    outcomes = load.outcomes(timeout=300)
    print(f"{'mode':10} {'host':12} {'drain wait':>10} {'restart':>8} {'total':>8}")
    for mode, hosts in timings.items():
        for host, t in sorted(hosts.items()):
            print(f"{mode:10} {host:12} {t['drain']:9.1f}s {t['restart']:7.1f}s {t['drain'] + t['restart']:7.1f}s")
    print("\nsubmit -> Running of the runs submitted:")
    by_id = {o.id: o for o in outcomes}
    for window, (start, end) in windows.items():
        pickups = [
            by_id[run_id].pickup
            for run_id, at in load.submitted_at.items()
            if start <= at <= end and by_id[run_id].pickup is not None
        ]
        print(f"  {window:26} {line(pickups)}")
    bad = unclean(outcomes)
    print(
        f"\n{len(outcomes)} runs, {len(outcomes) - len(bad)} Completed in one attempt"
        + (f"; NOT: {bad}" if bad else "")
    )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "inventories/lab")
