"""What Dask's TLS costs, measured side by side in one run on this machine (no lab needed).

  python -m benchmarks.dask_tls [ROUNDS]

Two local clusters of the controller's distributed (the version the fleet pins), alike but for the
protocol: a scheduler and two worker processes of one thread each, one over plain TCP, one over
mutual TLS with certificates of a CA of its own (Security.temporary(), as the fleet gives each
cluster a CA of its own). The rounds alternate between them; in each round:

  tasks    2,000 tiny tasks (client.map of an increment, then gather): the per-message cost
  bytes    40 tasks each returning 8 MiB, gathered by the client: the cost per byte

Prints each way's median per round and TLS over TCP. The fleet's flows send every task with its
run's Prefect context and report each task run to the API, which costs more than either: this is
the transport's share alone. Numbers, not verdicts: nothing here fails on a timing.
"""

from __future__ import annotations

import statistics
import sys
import time

from distributed import Client, LocalCluster
from distributed.security import Security

WAYS = ("tcp", "tls")


def increment(x: int) -> int:
    return x + 1


def payload(index: int) -> bytes:
    return bytes([index % 256]) * (8 << 20)


def cluster(way: str) -> tuple[LocalCluster, Client]:
    security = Security.temporary() if way == "tls" else None
    local = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        protocol=f"{way}://",
        security=security,
        dashboard_address=None,
        host="127.0.0.1",
    )
    return local, Client(local, security=security)


def measure(client: Client) -> dict[str, float]:
    started = time.perf_counter()
    assert client.gather(client.map(increment, range(2000), pure=False))[-1] == 2000
    tasks = time.perf_counter() - started
    started = time.perf_counter()
    assert sum(len(b) for b in client.gather(client.map(payload, range(40), pure=False))) == 40 * (8 << 20)
    return {"tasks": tasks, "bytes": time.perf_counter() - started}


def main(rounds: int) -> None:
    clusters = {way: cluster(way) for way in WAYS}
    try:
        for _local, client in clusters.values():
            measure(client)  # warm up: workers started, functions shipped
        results = {way: {"tasks": [], "bytes": []} for way in WAYS}
        for _ in range(rounds):
            for way, (_local, client) in clusters.items():
                for name, seconds in measure(client).items():
                    results[way][name].append(seconds)
    finally:
        for local, client in clusters.values():
            client.close()
            local.close()
    print(f"{rounds} rounds, the two clusters alternating (2 worker processes of 1 thread each)")
    print(f"{'measure':34} {'tcp median s':>13} {'tls median s':>13} {'tls / tcp':>10}")
    for name, what in (("tasks", "2,000 tiny tasks"), ("bytes", "40 results of 8 MiB gathered")):
        tcp, tls = (statistics.median(results[way][name]) for way in WAYS)
        print(f"{what:34} {tcp:13.3f} {tls:13.3f} {tls / tcp:10.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
