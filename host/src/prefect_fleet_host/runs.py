"""`prefect-fleet runs ENVIRONMENT...`: the flow runs in flight on this host, one line each,
`<environment> <flow-run id> <pid>`.

A flow run of prefect-worker@<environment> is a process in that unit's cgroup whose environment
names the run (PREFECT__FLOW_RUN_ID, set by the process worker). Reading the cgroup rather than
the worker's children finds the runs a stopped or restarted worker handed off as well. The
rolling restart's drain waits until this prints nothing. Must run as root (reads
/proc/*/environ).
"""

from __future__ import annotations

from pathlib import Path


def in_flight(environments: list[str], proc: Path = Path("/proc")) -> list[tuple[str, str, int]]:
    """(environment, flow-run id, pid) of every run in flight, one per run (its lowest pid)."""
    found: dict[tuple[str, str], int] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cgroup = (entry / "cgroup").read_text()
        except OSError:
            continue
        # /proc/<pid>/cgroup ends in the unit's own cgroup on cgroup v2 (also inside a container).
        environment = next(
            (
                e
                for e in environments
                if any(line.endswith(f"/prefect-worker@{e}.service") for line in cgroup.splitlines())
            ),
            None,
        )
        if environment is None:
            continue
        try:
            variables = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        run = next(
            (v[len(b"PREFECT__FLOW_RUN_ID=") :].decode() for v in variables if v.startswith(b"PREFECT__FLOW_RUN_ID=")),
            "",
        )
        if run:
            key = (environment, run)
            found[key] = min(found.get(key, int(entry.name)), int(entry.name))
    order = {e: i for i, e in enumerate(environments)}
    return sorted(((e, r, p) for (e, r), p in found.items()), key=lambda t: (order[t[0]], t[1]))


def main(environments: list[str]) -> int:
    for environment, run, pid in in_flight(environments):
        print(f"{environment} {run} {pid}")
    return 0
