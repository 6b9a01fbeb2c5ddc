"""Server capacity: how many polling workers a Prefect server tier holds on SQLite, on PostgreSQL,
and as two API replicas behind a load balancer (Prefect's HA setup) on PostgreSQL.

`make bench-server` brings up small fleets of its own beside the lab, converged by site.yml:
  - sqlite: one server on SQLite (the role's default);
  - postgresql: one server on PostgreSQL, its database on a second host;
  - postgresql-ha: two server hosts, one API replica each (the first also runs the background
    services), behind HAProxy, on PostgreSQL and Redis, which share a third host with HAProxy.
Against each, in turn and at growing sizes (interleaved: one size on each backend, then the next
size), it runs simulated process workers that make the calls a Prefect 3.8 process worker makes
(docs/facts.md):

  - every QUERY_SECONDS (1 s, five times the rate of the role's default of 5 s; Prefect jitters it by up to 30 %):
    POST /api/work_pools/<pool>/get_scheduled_flow_runs for its queue, scheduled before now + 1 s;
  - every HEARTBEAT_SECONDS (30 s): POST /api/work_pools/<pool>/workers/heartbeat;
  - for each run the poll returns: propose Pending (as the worker does), then Running and
    Completed a second apart (as the flow-run process does);

while flow runs are created at a steady CREATE_PER_SECOND (1 by default) through
POST /api/deployments/<id>/create_flow_run, into the queues that some simulated worker polls. The
simulated fleet has two environments (pools) and ten labels (queues) per pool, its workers spread
over them.

It prints, per backend and size: p50/p95/max of the poll and of create_flow_run, the count of 5xx
answers and of timeouts or refused connections, and the runs created and completed; then the largest
fleet each backend held with both p95 under 1 s and no error. Numbers, not verdicts: nothing here
fails on a timing. The load generator runs on the same machine as the servers; read the ratios.

Usage: make bench-server [BENCH_SIZES=3,10,20,30,50,100,300] [BENCH_STEP_SECONDS=30]
                         [BENCH_CREATE_PER_SECOND=1] [BENCH_BACKENDS=sqlite,postgresql,postgresql-ha]
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import random
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from benchmarks.stats import percentile
from lab.inventory import ROOT, resolve, write_lab_inventory

BIN = Path(sys.executable).parent
QUERY_SECONDS = 1.0
HEARTBEAT_SECONDS = 30.0
CREATE_PER_SECOND = float(os.environ.get("BENCH_CREATE_PER_SECOND", "1"))
CLIENT_TIMEOUT = 30.0  # Prefect's client default
POOLS = ["bench-production", "bench-staging"]
QUEUES = [f"label-{i:02d}" for i in range(10)]
BACKENDS = {
    "sqlite": (
        "prefect-fleet-bench-sqlite",
        "172.30.81.0/24",
        {"prefect_server": {"bench-sqlite-01": {"ansible_host": "172.30.81.10"}}},
        {"fleet_prefect_database_backend": "sqlite"},
    ),
    "postgresql": (
        "prefect-fleet-bench-pg",
        "172.30.82.0/24",
        {
            "prefect_server": {"bench-pg-01": {"ansible_host": "172.30.82.10"}},
            "prefect_database": {"bench-db-01": {"ansible_host": "172.30.82.11"}},
        },
        {"fleet_prefect_database_backend": "postgresql"},
    ),
    # Two replicas on two hosts, as inventories/lab-ha has them; the database, Redis and the load
    # balancer share one host so that the fleet costs one container more than "postgresql".
    "postgresql-ha": (
        "prefect-fleet-bench-ha",
        "172.30.83.0/24",
        {
            "prefect_server": {
                "bench-ha-01": {"ansible_host": "172.30.83.10"},
                "bench-ha-02": {"ansible_host": "172.30.83.11"},
            },
            "prefect_database": {"bench-ha-db-01": {"ansible_host": "172.30.83.12"}},
            "prefect_redis": {"bench-ha-db-01": {"ansible_host": "172.30.83.12"}},
            "prefect_load_balancer": {"bench-ha-db-01": {"ansible_host": "172.30.83.12"}},
        },
        {"fleet_prefect_database_backend": "postgresql"},
    ),
}


def ansible_playbook(inventory: Path, playbook: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "ansible-playbook"), "-i", str(inventory), playbook, *args],
        cwd=ROOT,
        env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "ANSIBLE_NOCOLOR": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process: subprocess.Popen, what: str) -> None:
    output, _ = process.communicate()
    if process.returncode != 0:
        sys.exit(f"{what} failed:\n{output[-4000:]}")


@dataclass
class Step:
    backend: str
    size: int
    polls: list[float] = field(default_factory=list)
    creates: list[float] = field(default_factory=list)
    server_errors: int = 0
    timeouts: int = 0
    created: int = 0
    completed: int = 0

    @property
    def errors(self) -> int:
        return self.server_errors + self.timeouts

    def held(self) -> bool:
        return bool(self.polls and self.creates) and self.errors == 0 and max(p95(self.polls), p95(self.creates)) < 1.0


def p95(values: list[float]) -> float:
    return percentile(values, 0.95)


def summary(values: list[float]) -> str:
    if not values:
        return f"{'-':>7} {'-':>7} {'-':>7}"
    return f"{statistics.median(values):7.3f} {p95(values):7.3f} {max(values):7.3f}"


class Server:
    def __init__(self, api: str, auth: str, ca_file: str) -> None:
        token = base64.b64encode(auth.encode()).decode() if auth else ""
        headers = {"Authorization": f"Basic {token}"} if token else {}
        self.api = api
        self.client = httpx.AsyncClient(
            base_url=api,
            headers=headers,
            # The fleet CA certifies the API (docs/network.md), as for every client of the fleet.
            verify=ssl.create_default_context(cafile=ca_file),
            timeout=CLIENT_TIMEOUT,
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=1000),
        )

    async def call(self, step: Step | None, method: str, path: str, body: dict | None = None) -> httpx.Response | None:
        """One API call; counts a 5xx or a timeout against `step`; returns None on those."""
        try:
            response = await self.client.request(method, path, json=body)
        except (httpx.TimeoutException, httpx.TransportError):
            if step is not None:
                step.timeouts += 1
            return None
        if response.status_code >= 500:
            if step is not None:
                step.server_errors += 1
            return None
        return response

    async def post(self, path: str, body: dict) -> dict:
        """A setup call: retried on 503 as Prefect's client does (a busy SQLite answers it even
        at rest); 409 (exists) is fine."""
        for attempt in range(8):
            response = await self.client.post(path, json=body)
            if response.status_code not in (429, 502, 503):
                break
            await asyncio.sleep(0.5 * 2**attempt)
        if response.status_code != 409:
            response.raise_for_status()
        return response.json()

    async def setup(self) -> dict[tuple[str, str], str]:
        """Pools, queues, a flow and a deployment per (pool, queue); returns the deployments' ids."""
        flow = await self.post("/flows/", {"name": "bench-capacity"})
        deployments = {}
        for pool in POOLS:
            await self.post("/work_pools/", {"name": pool, "type": "process"})
            for queue in QUEUES:
                await self.post(f"/work_pools/{pool}/queues", {"name": queue})
                deployment = await self.post(
                    "/deployments/",
                    {
                        "name": f"{pool}-{queue}",
                        "flow_id": flow["id"],
                        "work_pool_name": pool,
                        "work_queue_name": queue,
                        "entrypoint": "bench.py:bench",
                    },
                )
                deployments[(pool, queue)] = deployment["id"]
        return deployments


def placement(index: int) -> tuple[str, str]:
    """The (pool, queue) simulated worker `index` polls: environments first, then labels."""
    return POOLS[index % len(POOLS)], QUEUES[(index // len(POOLS)) % len(QUEUES)]


async def worker(server: Server, step: Step, index: int, stop: asyncio.Event, measuring: asyncio.Event) -> None:
    pool, queue = placement(index)
    name = f"bench-{step.backend}-{step.size}-{index}"
    last_heartbeat = -HEARTBEAT_SECONDS * random.random()
    await asyncio.sleep(random.random() * QUERY_SECONDS)
    while not stop.is_set():
        started = time.monotonic()
        if started - last_heartbeat >= HEARTBEAT_SECONDS:
            last_heartbeat = started
            await server.call(
                step if measuring.is_set() else None,
                "POST",
                f"/work_pools/{pool}/workers/heartbeat",
                {"name": name, "heartbeat_interval_seconds": int(HEARTBEAT_SECONDS)},
            )
        before = (datetime.now(UTC) + timedelta(seconds=QUERY_SECONDS)).isoformat()
        poll_started = time.monotonic()
        response = await server.call(
            step if measuring.is_set() else None,
            "POST",
            f"/work_pools/{pool}/get_scheduled_flow_runs",
            {"work_queue_names": [queue], "scheduled_before": before},
        )
        if response is not None and measuring.is_set():
            step.polls.append(time.monotonic() - poll_started)
        if response is not None and response.status_code == 200:
            for entry in response.json():
                asyncio.get_running_loop().create_task(run_flow(server, step, entry["flow_run"]["id"]))
        # Prefect's loop: the next poll QUERY_SECONDS after this one started, jittered by up to 30 %.
        delay = QUERY_SECONDS * (1 + random.uniform(0, 0.3)) - (time.monotonic() - started)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=max(0.0, delay))


async def run_flow(server: Server, step: Step, run_id: str) -> None:
    """What the worker (Pending) and then the flow-run process (Running, Completed) report."""
    response = await server.call(None, "POST", f"/flow_runs/{run_id}/set_state", {"state": {"type": "PENDING"}})
    if response is None or response.json().get("status") != "ACCEPT":
        return  # another simulated worker claimed it first, as with real workers sharing a queue
    for state in ("RUNNING", "COMPLETED"):
        await asyncio.sleep(1.0)
        response = await server.call(None, "POST", f"/flow_runs/{run_id}/set_state", {"state": {"type": state}})
        if response is None:
            return
    step.completed += 1


async def creator(server: Server, step: Step, deployments: list[str], stop: asyncio.Event) -> None:
    interval = 1.0 / CREATE_PER_SECOND
    while not stop.is_set():
        started = time.monotonic()
        deployment = random.choice(deployments)
        response = await server.call(step, "POST", f"/deployments/{deployment}/create_flow_run", {})
        if response is not None and response.status_code in (200, 201):
            step.creates.append(time.monotonic() - started)
            step.created += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=max(0.0, interval - (time.monotonic() - started)))


async def measure(server: Server, deployments: dict, backend: str, size: int, seconds: float) -> Step:
    step = Step(backend, size)
    stop, measuring = asyncio.Event(), asyncio.Event()
    tasks = [asyncio.create_task(worker(server, step, i, stop, measuring)) for i in range(size)]
    # Runs only go where some worker of this step polls, as a real fleet's deployments do.
    polled = [deployments[placement(i)] for i in range(min(size, len(deployments)))]
    tasks.append(asyncio.create_task(creator(server, step, polled, stop)))
    await asyncio.sleep(5)  # every worker has started polling
    measuring.set()
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*tasks)
    await asyncio.sleep(3)  # runs claimed at the end finish
    return step


async def settle(server: Server) -> None:
    """Wait until the server answers its health check quickly again, after a step."""
    for _ in range(120):
        try:
            started = time.monotonic()
            response = await server.client.get("/health", timeout=5)
            if response.status_code == 200 and time.monotonic() - started < 0.5:
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(1)


async def benchmark(servers: dict[str, Server], sizes: list[int], seconds: float) -> list[Step]:
    deployments = {backend: await server.setup() for backend, server in servers.items()}
    steps = []
    for size in sizes:
        for backend, server in servers.items():
            await settle(server)
            step = await measure(server, deployments[backend], backend, size, seconds)
            print(
                f"  {backend:<13} {size:4d} pollers: poll p95 {p95(step.polls):.3f} s, errors {step.errors}", flush=True
            )
            steps.append(step)
    for server in servers.values():
        await server.client.aclose()
    return steps


def report(steps: list[Step], seconds: float) -> None:
    print()
    print(
        f"server capacity: simulated process workers polling every {QUERY_SECONDS:.0f} s (heartbeat every "
        f"{HEARTBEAT_SECONDS:.0f} s), {CREATE_PER_SECOND:g} flow run(s) created per second, {seconds:.0f} s per step"
    )
    print(
        f"{'backend':<14}{'pollers':>7}   {'poll p50':>7} {'p95':>7} {'max':>7}   {'create p50':>10} {'p95':>7} {'max':>7}"
        f"   {'5xx':>5} {'timeout':>7}   {'created':>7} {'completed':>9}"
    )
    for s in steps:
        poll, create = summary(s.polls), summary(s.creates).split()
        print(
            f"{s.backend:<14}{s.size:>7}   {poll}   {create[0]:>10} {create[1]:>7} {create[2]:>7}"
            f"   {s.server_errors:>5} {s.timeouts:>7}   {s.created:>7} {s.completed:>9}"
        )
    print()
    for backend in dict.fromkeys(s.backend for s in steps):
        held = [s.size for s in steps if s.backend == backend and s.held()]
        first_failure = next((s.size for s in steps if s.backend == backend and not s.held()), None)
        largest = max(held) if held else 0
        beyond = f"; not at {first_failure}" if first_failure else "; held at every size tried"
        print(
            f"largest fleet {backend} held (poll and create p95 < 1 s, no 5xx, no timeout): {largest} pollers{beyond}"
        )


def main() -> None:
    sizes = [int(s) for s in os.environ.get("BENCH_SIZES", "3,10,20,30,50,100,300").split(",")]
    seconds = float(os.environ.get("BENCH_STEP_SECONDS", "30"))
    chosen = os.environ.get("BENCH_BACKENDS", ",".join(BACKENDS)).split(",")
    unknown = sorted(set(chosen) - set(BACKENDS))
    if unknown:
        sys.exit(f"BENCH_BACKENDS: unknown {', '.join(unknown)}; known: {', '.join(BACKENDS)}")
    image = (ROOT / ".cache" / "lab-image").read_text().strip()
    with tempfile.TemporaryDirectory() as tmp:
        inventories = {
            backend: write_lab_inventory(Path(tmp) / backend, network, subnet, groups, settings=settings)
            for backend, (network, subnet, groups, settings) in BACKENDS.items()
            if backend in chosen
        }
        for inventory in inventories.values():
            finish(ansible_playbook(inventory, "lab/down.yml"), "lab/down.yml")
        try:
            print(f"bringing up {', '.join(inventories)} (site.yml) ...", flush=True)
            for inventory in inventories.values():
                finish(ansible_playbook(inventory, "lab/up.yml", "-e", f"lab_image={image}"), "lab/up.yml")
            converges = {b: ansible_playbook(inventory, "site.yml") for b, inventory in inventories.items()}
            for backend, process in converges.items():
                finish(process, f"site.yml ({backend})")
            servers = {}
            for backend, inventory in inventories.items():
                resolved = resolve(
                    inventory, ["fleet_prefect_api_url", "prefect_server_auth_string", "fleet_tls_ca_dir"]
                )
                servers[backend] = Server(
                    resolved["fleet_prefect_api_url"],
                    resolved["prefect_server_auth_string"],
                    resolved["fleet_tls_ca_dir"] + "/ca.crt",
                )
            print(f"measuring {sizes} pollers, {seconds:.0f} s each, backends interleaved", flush=True)
            steps = asyncio.run(benchmark(servers, sizes, seconds))
        finally:
            for inventory in inventories.values():
                finish(ansible_playbook(inventory, "lab/down.yml"), "lab/down.yml")
    report(steps, seconds)


if __name__ == "__main__":
    main()
