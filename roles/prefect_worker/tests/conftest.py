"""Fixtures of the prefect_worker molecule scenario: the worker host and the server."""

from __future__ import annotations

import pytest
import testinfra

from tests.molecule_checks import journal_on_failure, scenario_host


@pytest.fixture(scope="module")
def worker() -> testinfra.host.Host:
    return scenario_host("prefect_workers")


@pytest.fixture(scope="module")
def server() -> testinfra.host.Host:
    return scenario_host("prefect_server")


# On a failed test, attach the journal to the report.
pytest_runtest_makereport = journal_on_failure("prefect_workers", "prefect-*")
