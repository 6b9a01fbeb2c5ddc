"""Steady flow-run load on the lab, and a sampler of the workers' ONLINE status, for the tests and
benchmarks of restarts: while a restart happens, runs keep arriving; afterwards every run is read
back with its whole state history (a run that crashed and was retried must not pass as fine).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

from lab.fleet import Api

FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def parse_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass
class Outcome:
    id: str
    queue: str
    state: str  # final state's name (Completed, Crashed, ...)
    run_count: int
    history: list[str]  # state names, oldest first
    created: float  # server time, epoch seconds
    running: float | None  # first Running, server time

    @property
    def pickup(self) -> float | None:
        """Seconds from creation to its first Running state."""
        return None if self.running is None else self.running - self.created


@dataclass(eq=False)
class Load(threading.Thread):
    """Creates a run of `deployment` every `every` seconds, routed round-robin to `queues` (the
    deployment's pool, another queue: create_flow_run's work_queue_name), each lasting `seconds`.
    Submissions that fail (the API restarting) are retried until accepted: none is dropped."""

    api: Api = field(repr=False)
    deployment_id: str
    queues: list[str]
    every: float = 2.0
    seconds: float = 30.0
    ids: list[tuple[str, str]] = field(default_factory=list)  # (run id, queue)
    submitted_at: dict[str, float] = field(default_factory=dict)  # run id -> controller time.time()
    submit_errors: int = 0

    def __post_init__(self) -> None:
        super().__init__(daemon=True)
        self.stopping = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stopping.is_set():
            started = time.monotonic()
            queue = self.queues[n % len(self.queues)]
            while not self.stopping.is_set():
                try:
                    run = self.api.call(
                        "POST",
                        f"/deployments/{self.deployment_id}/create_flow_run",
                        {"parameters": {"seconds": self.seconds, "note": "load"}, "work_queue_name": queue},
                    )
                    self.ids.append((run["id"], queue))
                    self.submitted_at[run["id"]] = time.time()
                    break
                except Exception:
                    self.submit_errors += 1
                    time.sleep(0.5)
            n += 1
            self.stopping.wait(max(0.0, self.every - (time.monotonic() - started)))

    def __enter__(self) -> Load:
        self.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stopping.set()
        self.join(timeout=60)

    def outcomes(self, timeout: float, final: set[str] = FINAL) -> list[Outcome]:
        """The submitted runs, read back once final (see read_outcomes)."""
        return read_outcomes(self.api, self.ids, timeout, final)


def read_outcomes(api: Api, ids: list[tuple[str, str]], timeout: float, final: set[str] = FINAL) -> list[Outcome]:
    """Wait (at most `timeout` s) until every run of `ids` ((run id, queue) pairs) is in one of the
    `final` state types; read each one back. A test that expects crashed runs to be retried leaves
    CRASHED out of `final`."""
    deadline = time.monotonic() + timeout
    pending = dict(ids)
    while pending and time.monotonic() < deadline:
        for run_id in list(pending):
            state = api.call("GET", f"/flow_runs/{run_id}")["state"]
            if state and state["type"] in final:
                pending.pop(run_id)
        if pending:
            time.sleep(2)
    results = []
    for run_id, queue in ids:
        run = api.call("GET", f"/flow_runs/{run_id}")
        states = sorted(api.call("GET", f"/flow_run_states/?flow_run_id={run_id}"), key=lambda s: s["timestamp"])
        running = next((parse_time(s["timestamp"]) for s in states if s["type"] == "RUNNING"), None)
        results.append(
            Outcome(
                id=run_id,
                queue=queue,
                state=run["state"]["name"] if run["state"] else "none",
                run_count=run["run_count"],
                history=[s["name"] for s in states],
                created=parse_time(run["created"]),
                running=running,
            )
        )
    return results


def unclean(outcomes: list[Outcome]) -> list[str]:
    """Every run that did not go straight to Completed in one attempt, described."""
    return [
        f"{o.id[:8]} ({o.queue}): {o.state}, run {o.run_count}x, {' > '.join(o.history)}"
        for o in outcomes
        if o.state != "Completed" or o.run_count != 1 or "Crashed" in o.history
    ]


class OnlineSampler(threading.Thread):
    """Every second, whether each label has at least one ONLINE worker in `pool` (a label's hosts
    are given; a host's worker is named <host>-<pool>). Gaps are recorded with their time."""

    def __init__(self, api: Api, pool: str, label_hosts: dict[str, list[str]], interval: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.api, self.pool, self.label_hosts, self.interval = api, pool, label_hosts, interval
        self.samples = 0
        self.gaps: list[str] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                workers = self.api.call("POST", f"/work_pools/{self.pool}/workers/filter", {"limit": 200})
            except Exception as error:
                self.gaps.append(f"{time.strftime('%H:%M:%S')} API: {error}")
            else:
                online = {w["name"] for w in workers if w["status"] == "ONLINE"}
                self.samples += 1
                for label, hosts in self.label_hosts.items():
                    if not any(f"{host}-{self.pool}" in online for host in hosts):
                        self.gaps.append(f"{time.strftime('%H:%M:%S')} label {label}: no ONLINE worker")
            self.stopping.wait(self.interval)

    def __enter__(self) -> OnlineSampler:
        self.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stopping.set()
        self.join(timeout=30)
