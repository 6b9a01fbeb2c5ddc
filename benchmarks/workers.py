"""Worker timings on the lab fleet (`make lab` first), measured side by side in one run.

  python -m benchmarks.workers latency [RUNS]       submit -> Running, fleet settings vs Prefect's defaults
  python -m benchmarks.workers propagation [PUSHES] push -> every production checkout at the new commit
  python -m benchmarks.workers startcost [RUNS]     CPU per run start: the engine directly (the fleet) vs Prefect's supervisor

latency: the staging worker on atd-data02 is restarted with Prefect's default polling
(PREFECT_WORKER_QUERY_SECONDS=10, PREFECT_WORKER_PREFETCH_SECONDS=10, from a runtime drop-in that
adds an environment file, removed afterwards; the script checks the worker's environment), the
production worker keeps the role's settings; runs are submitted to both alternately, a pair at a
time. Times come from the server's own state timestamps:
submit (Scheduled) -> pickup (Pending, set by the worker) -> Running (set by the flow-run process).

startcost: runs of a 10 s flow, one at a time on the production worker of atd-data04, alternating
between the pool's command (the fleet's `prefect_objects_run_engine_directly`: the environment's
`python -m prefect.engine`) and Prefect's default (the run's job variables set `command` to null:
a workspace supervisor that starts the engine). Per run: the CPU seconds its processes used (the
worker's reaped-children CPU time, /proc/<pid>/stat cutime + cstime, before and after), the
Python processes and their resident memory in the middle of the run, and pickup -> Running. The
Python each run reports tells which path ran it.
Numbers, not verdicts: nothing here fails on a timing.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from benchmarks.stats import percentile
from lab.fleet import Api, Lab
from lab.flowruns import report_of, start, wait

INVENTORY = "inventories/lab"
HOST = "atd-data02"
DROP_IN = "/run/systemd/system/prefect-worker@staging.service.d/prefect-defaults.conf"
DEFAULTS_ENV = "/run/prefect-worker-defaults.env"


def summary(values: list[float]) -> str:
    return f"p50 {statistics.median(values):5.2f} s   p95 {percentile(values, 0.95):5.2f} s   (n={len(values)})"


def state_times(api: Api, run_id: str) -> dict[str, datetime]:
    states = api.call("GET", f"/flow_run_states/?flow_run_id={run_id}")
    times: dict[str, datetime] = {}
    for state in states:
        stamp = datetime.fromisoformat(state["timestamp"].replace("Z", "+00:00"))
        times.setdefault(state["type"], stamp)
    return times


def latency(runs: int) -> None:
    lab = Lab.of(INVENTORY)
    api = lab.api
    # A later EnvironmentFile= overrides an earlier one (Environment= would not override a file).
    lab.ssh(
        HOST,
        f"printf 'PREFECT_WORKER_QUERY_SECONDS=10\\nPREFECT_WORKER_PREFETCH_SECONDS=10\\n' > {DEFAULTS_ENV} "
        f"&& mkdir -p {Path(DROP_IN).parent} && printf '[Service]\\nEnvironmentFile={DEFAULTS_ENV}\\n' > {DROP_IN} "
        "&& systemctl daemon-reload && systemctl restart prefect-worker@staging.service",
    )
    shown = lab.ssh(HOST, "tr '\\0' '\\n' < /proc/$(systemctl show -p MainPID --value prefect-worker@staging)/environ")
    assert "PREFECT_WORKER_QUERY_SECONDS=10" in shown.stdout, "the staging worker did not take Prefect's defaults"
    sides = {
        "fleet settings (poll 1 s, prefetch 1 s)": ("fleet-report-production-atd-data02", "production"),
        "Prefect defaults (poll 10 s, prefetch 10 s)": ("fleet-report-staging-atd-data02", "staging"),
    }
    results: dict[str, dict[str, list[float]]] = {side: {"pickup": [], "spawn": [], "total": []} for side in sides}
    try:
        time.sleep(15)  # both workers polling
        for _ in range(runs):
            pair = [start(api, "fleet-report", deployment, env, "atd-data02") for deployment, env in sides.values()]
            wait(api, pair, timeout=180)
            for side, run in zip(sides, pair, strict=True):
                t = state_times(api, run.id)
                results[side]["pickup"].append((t["PENDING"] - t["SCHEDULED"]).total_seconds())
                results[side]["spawn"].append((t["RUNNING"] - t["PENDING"]).total_seconds())
                results[side]["total"].append((t["RUNNING"] - t["SCHEDULED"]).total_seconds())
    finally:
        lab.ssh(
            HOST,
            f"rm -f {DROP_IN} {DEFAULTS_ENV} && systemctl daemon-reload && systemctl restart prefect-worker@staging.service",
        )
    print(f"submit -> Running on {HOST}, {runs} runs per side, interleaved (server timestamps)")
    for side, values in results.items():
        print(f"  {side}")
        print(f"    submit -> worker pickup    {summary(values['pickup'])}")
        print(f"    pickup -> Running (spawn)  {summary(values['spawn'])}")
        print(f"    submit -> Running          {summary(values['total'])}")
    fleet, default = (statistics.median(v["total"]) for v in results.values())
    print(f"  ratio defaults/fleet (p50 submit -> Running): {default / fleet:.2f}x")


# Resident memory (KiB) of each process of the unit but its main one (the worker): a run's
# processes (Prefect's supervisor does not carry the run's id in its environment, its engine does).
RUN_PROCESSES = """
import pathlib, subprocess
main = subprocess.run(["systemctl", "show", "-P", "MainPID", "{unit}"], capture_output=True, text=True).stdout.strip()
for proc in pathlib.Path("/proc").glob("[0-9]*"):
    try:
        if proc.name == main or not (proc / "cgroup").read_text().rstrip().endswith("/{unit}"):
            continue
        print(next(line.split()[1] for line in (proc / "status").read_text().splitlines() if line.startswith("VmRSS")))
    except (OSError, StopIteration):
        pass
"""


def children_cpu(lab: Lab, host: str, unit: str) -> float:
    """CPU seconds of the reaped children (and theirs) of a unit's main process."""
    stat = lab.ssh(host, f"cat /proc/$(systemctl show -p MainPID --value {unit})/stat").stdout
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, field 3 (state) is index 0
    return (int(fields[13]) + int(fields[14])) / 100  # cutime, cstime, in clock ticks (100 Hz)


def startcost(runs: int) -> None:
    lab = Lab.of(INVENTORY)
    api = lab.api
    host, unit = "atd-data04", "prefect-worker@production.service"
    deployment = api.call("GET", "/deployments/name/fleet-report/etl-report-production-etl")["id"]
    sides = {
        "engine directly (the fleet's pool command)": {},
        "Prefect's default (supervisor + engine)": {"job_variables": {"command": None}},
    }
    results: dict[str, dict[str, list[float]]] = {
        side: {"cpu": [], "processes": [], "rss": [], "spawn": []} for side in sides
    }
    pythons: dict[str, set[str]] = {side: set() for side in sides}
    for _ in range(runs):
        for side, extra in sides.items():
            before = children_cpu(lab, host, unit)
            run = api.call(
                "POST",
                f"/deployments/{deployment}/create_flow_run",
                {"parameters": {"seconds": 10, "note": "startcost"}, "work_queue_name": host, **extra},
            )
            flow_run = start_run = None
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                flow_run = api.call("GET", f"/flow_runs/{run['id']}")
                if flow_run["state_type"] == "RUNNING" and start_run is None:
                    time.sleep(4)  # past the start, mid-run
                    start_run = lab.ssh(host, "python3 -", input=RUN_PROCESSES.format(unit=unit)).stdout.split()
                if flow_run["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                    break
                time.sleep(0.5)
            if flow_run is None or flow_run["state_type"] != "COMPLETED":
                sys.exit(f"{side}: run {run['id']} ended {flow_run and flow_run['state_name']}")
            time.sleep(2)  # the worker has reaped it
            results[side]["cpu"].append(children_cpu(lab, host, unit) - before)
            results[side]["processes"].append(len(start_run or []))
            results[side]["rss"].append(sum(int(kb) for kb in start_run or []) / 1024)
            t = state_times(api, run["id"])
            results[side]["spawn"].append((t["RUNNING"] - t["PENDING"]).total_seconds())
            pythons[side].add((report_of(api, run["id"]) or {}).get("python", "not reported"))
    print(f"one run at a time on {host}, {runs} runs per side, interleaved")
    for side, values in results.items():
        print(f"  {side}: Python {', '.join(sorted(pythons[side]))}")
        print(
            f"    CPU seconds per run        p50 {statistics.median(values['cpu']):5.2f} s   max {max(values['cpu']):5.2f} s"
        )
        print(
            f"    processes mid-run          {statistics.median(values['processes']):.0f}, "
            f"resident {statistics.median(values['rss']):.0f} MiB"
        )
        print(f"    pickup -> Running (spawn)  {summary(values['spawn'])}")
    single, supervised = (statistics.median(v["cpu"]) for v in results.values())
    print(f"  ratio CPU per run, Prefect's default / engine directly: {supervised / single:.2f}x")


def propagation(pushes: int) -> None:
    lab = Lab.of(INVENTORY)
    interval = int(lab.server["prefect_worker_sync_interval"])
    workers = lab.groups["prefect_workers"]
    elapsed: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "flows"
        env = lab.git_env()
        subprocess.run(
            ["git", "clone", "-q", "--branch", "production", lab.server["fleet_flows_repo"], str(repo)],
            env=env,
            check=True,
        )
        git = ["git", "-C", str(repo), "-c", "user.name=bench", "-c", "user.email=bench@prefect-fleet.invalid"]
        for i in range(pushes):
            (repo / "flows" / "BENCH.md").write_text(f"push {i} at {time.time()}\n")
            subprocess.run([*git, "add", "-A"], check=True)
            subprocess.run([*git, "commit", "-q", "-m", f"bench {i}"], check=True)
            subprocess.run([*git, "push", "-q", "origin", "production"], env=env, check=True)
            commit = subprocess.run(
                [*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
            ).stdout.strip()
            pushed = time.monotonic()
            pending = set(workers)
            while pending and time.monotonic() - pushed < interval + 60:
                pending = {
                    h
                    for h in pending
                    if lab.ssh(
                        h, "git -c safe.directory='*' -C /opt/prefect/production/current rev-parse HEAD"
                    ).stdout.strip()
                    != commit
                }
                time.sleep(0.2)
            if pending:
                sys.exit(f"push {i} ({commit[:12]}) did not reach {sorted(pending)} within {interval + 60} s")
            elapsed.append(time.monotonic() - pushed)
    print(f"push -> all {len(workers)} production checkouts at the new commit, sync interval {interval} s")
    print(f"  {summary(elapsed)}   max {max(elapsed):.2f} s (bound: interval + 10 s = {interval + 10} s)")


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "latency"
    count = int(sys.argv[2]) if len(sys.argv) > 2 else (20 if what == "latency" else 10)
    {"latency": latency, "propagation": propagation, "startcost": startcost}[what](count)
