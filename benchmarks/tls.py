"""The cost of the API's TLS front, on the lab (`make lab` first), measured side by side in one run.

  python -m benchmarks.tls [ROUNDS]

On the server host itself, so that only the front differs: GET /api/health (the credential
sent, as every client sends it) in rounds of 50 requests, the three ways alternating round by round:

  plain    http://127.0.0.1:4200, straight to the Prefect server, one kept-alive connection
  tls      https://<host's address>:4200, through HAProxy's TLS front, one kept-alive connection
           (how Prefect's clients talk: httpx keeps its connections)
  tls-new  the same with a new connection, so a full TLS handshake, for each request

Prints each way's median and p95 per request and the ratios to plain. Numbers, not verdicts:
nothing here fails on a timing.
"""

from __future__ import annotations

import json
import shlex
import sys

from benchmarks.stats import percentile
from lab.fleet import Lab

INVENTORY = "inventories/lab"

# Run on the server host; the credential comes on stdin.
PROBE = r"""
import base64, http.client, json, ssl, sys, time
given = json.load(sys.stdin)
headers = {"Authorization": "Basic " + base64.b64encode(given["auth"].encode()).decode()}
ctx = ssl.create_default_context(cafile="/etc/prefect-fleet/tls/ca.crt")
def plain():
    return http.client.HTTPConnection("127.0.0.1", given["port"], timeout=10)
def tls():
    return http.client.HTTPSConnection(given["address"], given["port"], timeout=10, context=ctx)
def measure(make, reuse, n):
    times, conn = [], make()
    for _ in range(n):
        if not reuse:
            conn.close()
            conn = make()
        started = time.perf_counter()
        conn.request("GET", "/api/health", headers=headers)
        answer = conn.getresponse()
        answer.read()
        assert answer.status == 200, answer.status
        times.append(time.perf_counter() - started)
    conn.close()
    return times
ways = {"plain": (plain, True), "tls": (tls, True), "tls-new": (tls, False)}
out = {name: [] for name in ways}
for name, (make, reuse) in ways.items():
    measure(make, reuse, 10)  # warm up
for _ in range(given["rounds"]):
    for name, (make, reuse) in ways.items():
        out[name] += measure(make, reuse, 50)
print(json.dumps(out))
"""


def main(rounds: int) -> None:
    lab = Lab.of(INVENTORY)
    server = lab.groups["prefect_server"][0]
    port = int(lab.api_url.rsplit(":", 1)[1].split("/", 1)[0])
    given = {"auth": lab.server["prefect_server_auth_string"], "address": lab.addresses[server], "port": port}
    result = lab.ssh(
        server, f"python3 -c {shlex.quote(PROBE)}", input=json.dumps({**given, "rounds": rounds}), timeout=1800
    )
    times = json.loads(result.stdout)
    base = percentile(times["plain"], 0.5)
    print(f"{rounds} rounds of 50 GET /api/health per way, on {server}, the ways alternating")
    print(f"{'way':8} {'requests':>8} {'median ms':>10} {'p95 ms':>8} {'median / plain':>15}")
    for name, values in times.items():
        median = percentile(values, 0.5)
        print(
            f"{name:8} {len(values):8d} {median * 1000:10.2f} {percentile(values, 0.95) * 1000:8.2f} {median / base:15.2f}"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
