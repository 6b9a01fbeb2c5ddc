"""Shared fixtures of the prefect_server molecule scenarios: the server and a client host."""

from __future__ import annotations

import pytest
import testinfra

from tests.molecule_checks import scenario_host as _host


@pytest.fixture(scope="module")
def server() -> testinfra.host.Host:
    return _host("prefect_server")


@pytest.fixture(scope="module")
def client() -> testinfra.host.Host:
    return _host("clients")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # noqa: ARG001
    """On a failed test, attach the server's journal to the report."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        journal = _host("prefect_server").run("journalctl -u prefect-server --no-pager -n 60")
        report.sections.append(("journalctl -u prefect-server", journal.stdout))
