"""Shared fixtures of the prefect_server molecule scenarios: the server and a client host."""

from __future__ import annotations

import pytest
import testinfra

from tests.molecule_checks import journal_on_failure
from tests.molecule_checks import scenario_host as _host


@pytest.fixture(scope="module")
def server() -> testinfra.host.Host:
    return _host("prefect_server")


@pytest.fixture(scope="module")
def client() -> testinfra.host.Host:
    return _host("clients")


# On a failed test, attach the journal to the report.
pytest_runtest_makereport = journal_on_failure("prefect_server", "prefect-server")
