"""End to end on the HA lab (make e2e-ha): the server tier loses an API replica, then a whole API
host, then every replica restarts in turn, while runs arrive every 2 s. No run is lost (each ends
Completed in one attempt), and a client asking /api/health through the load balancer every 0.5 s
never sees an error for longer than the load balancer's check interval.

The replica stopped is atd-prefect-02's: the first host also runs the background services, which
the tier has once (docs/high-availability.md)."""

from __future__ import annotations

import csv
import functools
import io
import json
import shlex
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from lab.ansible import playbook
from lab.inventory import resolve
from lab.load import Load, unclean

pytestmark = pytest.mark.lab

BIN = Path(sys.executable).parent
DEPLOYMENT = "fleet-report/etl-report-production-etl"
# HAProxy's health check interval in the lab (the haproxy role's default, haproxy_check_interval_ms).
CHECK_INTERVAL = 2.0
SAMPLE_EVERY = 0.5


class Sampler(threading.Thread):
    """GET `url` every SAMPLE_EVERY s; records each failed answer (an error status, none at all, or
    one slower than 5 s) with its time, and the longest stretch of failures."""

    def __init__(self, url: str, context) -> None:
        super().__init__(daemon=True)
        self.url, self.context = url, context
        self.samples = 0
        self.failures: list[tuple[float, str]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            started = time.monotonic()
            problem = None
            try:
                with urllib.request.urlopen(self.url, timeout=5, context=self.context) as response:
                    response.read()
                    if response.status != 200:
                        problem = f"answered {response.status}"
            except urllib.error.HTTPError as error:
                problem = f"answered {error.code}"
            except OSError as error:
                problem = f"no answer: {error}"
            self.samples += 1
            if problem:
                self.failures.append((started, problem))
            self.stopping.wait(max(0.0, SAMPLE_EVERY - (time.monotonic() - started)))

    def longest_outage(self) -> float:
        """Seconds from the first to the last failure of the longest run of consecutive failures
        (one failure alone counts as one sample interval)."""
        longest, start, last = 0.0, None, None
        for at, _ in self.failures:
            if last is None or at - last > SAMPLE_EVERY * 1.5:
                start = at
            last = at
            longest = max(longest, last - start + SAMPLE_EVERY)
        return longest

    def __enter__(self) -> Sampler:
        self.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stopping.set()
        self.join(timeout=30)


@functools.cache
def lab_setting(inventory: str, name: str) -> str:
    return resolve(inventory, [name])[name]


def lb_states(lab) -> dict[str, str]:
    """Each replica's state at the load balancer, from its stats page (CSV), which listens on the
    load balancer's loopback only; its credential goes over stdin."""
    lb = lab.groups["prefect_load_balancer"][0]
    auth = lab_setting(lab.inventory, "vault_haproxy_stats_auth") or ""
    script = (
        "import base64, sys, urllib.request; auth = sys.stdin.read().strip(); "
        "r = urllib.request.Request('http://127.0.0.1:8404/stats;csv'); "
        "auth and r.add_header('Authorization', 'Basic ' + base64.b64encode(auth.encode()).decode()); "
        "print(urllib.request.urlopen(r, timeout=10).read().decode())"
    )
    answer = lab.ssh(lb, f"python3 -c {shlex.quote(script)}", check=False, input=auth)
    if answer.returncode != 0:
        raise OSError(answer.stderr.strip()[-300:])
    text = answer.stdout.lstrip("# ")
    return {
        row["svname"]: row["status"]
        for row in csv.DictReader(io.StringIO(text))
        if row["pxname"] == "prefect_api" and row["svname"] not in ("FRONTEND", "BACKEND")
    }


def wait_all_up(lab, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            states = lb_states(lab)
            if states and all(s == "UP" for s in states.values()):
                return
        except OSError as error:
            states = str(error)
        assert time.monotonic() < deadline, f"replicas not all UP within {timeout} s: {states}"
        time.sleep(1)


def container(lab, host: str) -> str:
    return f"{lab_setting(lab.inventory, 'lab_network')}-{host}"


def under_load(lab, operation) -> None:
    """Runs every 2 s and the sampler around `operation`; then every run Completed once, and no
    stretch of failed health answers longer than the check interval."""
    api = lab.api
    deployment_id = api.call("GET", f"/deployments/name/{DEPLOYMENT}")["id"]
    wait_all_up(lab)
    with (
        Sampler(lab.api_url + "/health", lab.tls) as sampler,
        Load(api, deployment_id, ["etl"], every=2.0, seconds=20.0) as load,
    ):
        time.sleep(10)
        operation()
        time.sleep(10)
    outcomes = load.outcomes(timeout=300)
    longest = sampler.longest_outage()
    print(
        f"\n{len(outcomes)} runs, {len(unclean(outcomes))} not clean; {sampler.samples} health samples through the"
        f" load balancer, {len(sampler.failures)} failed, longest stretch {longest:.1f} s;"
        f" {load.submit_errors} submission(s) retried; failures: "
        + "; ".join(
            f"{time.strftime('%H:%M:%S', time.localtime(time.time() - time.monotonic() + at))} {what}"
            for at, what in sampler.failures[:5]
        )
    )
    assert len(outcomes) >= 10, f"only {len(outcomes)} runs were submitted"
    assert not unclean(outcomes), unclean(outcomes)
    assert longest <= CHECK_INTERVAL, (
        f"health failures for {longest:.1f} s (check interval {CHECK_INTERVAL} s): {sampler.failures[:10]}"
    )


def test_stopping_a_replica_then_its_host_loses_no_run_and_no_request(lab):
    host = lab.groups["prefect_server"][1]

    def stop_the_unit_then_the_container():
        lab.ssh(host, "systemctl stop prefect-server@4200.service")
        time.sleep(15)
        lab.ssh(host, "systemctl start prefect-server@4200.service")
        wait_all_up(lab)
        subprocess.run(["docker", "stop", container(lab, host)], check=True, capture_output=True)
        time.sleep(15)
        subprocess.run(["docker", "start", container(lab, host)], check=True, capture_output=True)
        wait_all_up(lab)

    under_load(lab, stop_the_unit_then_the_container)


def test_a_converge_that_restarts_every_replica_loses_no_run_and_no_request(lab):
    """A changed server setting restarts the whole tier through the role's handler, as a new
    Prefect version does: replica by replica, each drained at the load balancer first."""

    def converge(level: str) -> None:
        result = playbook(
            lab.inventory,
            "playbooks/server.yml",
            "-e",
            json.dumps({"prefect_server_extra_env": {"PREFECT_SERVER_LOGGING_LEVEL": level}}),
        )
        assert "Take the replica out of the load balancer" in result.stdout, "no replica was restarted"

    def restarts() -> None:
        before = {
            h: lab.ssh(h, "systemctl show -P ActiveEnterTimestampMonotonic prefect-server@4200").stdout
            for h in lab.groups["prefect_server"]
        }
        converge("INFO")
        after = {
            h: lab.ssh(h, "systemctl show -P ActiveEnterTimestampMonotonic prefect-server@4200").stdout
            for h in lab.groups["prefect_server"]
        }
        assert all(after[h] != before[h] for h in before), "not every replica restarted"
        converge("WARNING")

    under_load(lab, restarts)
