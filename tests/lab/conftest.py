"""Fixtures of the end-to-end tests, which run against the lab fleet that `make lab` brought up."""

from __future__ import annotations

import contextlib
import os
import statistics
import threading
import time
import urllib.error
import urllib.request

import pytest

from benchmarks.stats import percentile
from lab.fleet import Lab

# A stall, not noise: an API that takes longer than this to say it is healthy is an outage.
STALL_SECONDS = 5.0


@pytest.fixture(scope="session")
def lab() -> Lab:
    return Lab.of(os.environ.get("LAB_INVENTORY", "inventories/lab"))


class HealthSampler(threading.Thread):
    """Asks the lab's /api/health every second, from the controller, for as long as it runs."""

    def __init__(self, url: str, context=None, interval: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.url, self.context, self.interval = url, context, interval
        self.latencies: list[float] = []
        self.problems: list[str] = []
        self.planned: list[str] = []  # problems inside planned_outage(): reported, not failures
        self.in_planned_outage = False
        self.stopping = threading.Event()

    @contextlib.contextmanager
    def planned_outage(self, why: str):
        """A test that stops or restarts the server on purpose: what the sampler sees meanwhile
        is reported under `why` and does not fail the run."""
        self.in_planned_outage = True
        before = len(self.planned)
        try:
            yield
        finally:
            self.in_planned_outage = False
            self.planned.append(f"planned ({why}): {len(self.planned) - before} sample(s) without a healthy answer")

    def problem(self, text: str) -> None:
        (self.planned if self.in_planned_outage else self.problems).append(text)

    def run(self) -> None:
        while not self.stopping.is_set():
            started = time.monotonic()
            stamp = time.strftime("%H:%M:%S")
            try:
                with urllib.request.urlopen(self.url, timeout=2 * STALL_SECONDS, context=self.context) as response:
                    response.read()
                    status = response.status
            except urllib.error.HTTPError as error:
                status = error.code
            except OSError as error:  # refused, reset, timed out: the API was not there
                self.problem(f"{stamp} no answer: {error}")
                status = None
            elapsed = time.monotonic() - started
            if status is not None:
                self.latencies.append(elapsed)
                if status >= 500:
                    self.problem(f"{stamp} answered {status}")
                if elapsed > STALL_SECONDS:
                    self.problem(f"{stamp} answered after {elapsed:.1f} s")
            self.stopping.wait(max(0.0, self.interval - elapsed))

    def summary(self) -> str:
        values = self.latencies or [0.0]
        return (
            f"/api/health sampled {len(self.latencies)} times during the e2e run: p50 {statistics.median(values) * 1000:.0f} ms,"
            f" p95 {percentile(values, 0.95) * 1000:.0f} ms, max {max(values) * 1000:.0f} ms; {len(self.problems)} problem(s)"
        )


SUMMARY = pytest.StashKey[list]()


@pytest.fixture(scope="session", autouse=True)
def health_sampler(lab, request):
    """Through the whole end-to-end run, the server's /api/health is asked every second; the run
    fails on any 5xx, any refused or missing answer, and any answer slower than STALL_SECONDS."""
    sampler = HealthSampler(lab.api_url + "/health", lab.tls)
    sampler.start()
    yield sampler
    sampler.stopping.set()
    sampler.join(timeout=30)
    request.config.stash[SUMMARY] = [
        sampler.summary(),
        *sampler.problems[:20],
        *[line for line in sampler.planned if line.startswith("planned")],
    ]
    assert not sampler.problems, sampler.summary() + ": " + "; ".join(sampler.problems[:10])


def pytest_terminal_summary(terminalreporter, config):
    """The sampler's figures, after the tests (a fixture's own output is captured)."""
    lines = config.stash.get(SUMMARY, [])
    if lines:
        terminalreporter.write_sep("-", "API health during the run")
        for line in lines:
            terminalreporter.write_line(line)
