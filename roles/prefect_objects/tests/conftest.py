"""Fixtures of the prefect_objects molecule scenario: the server host, and its API read on the host
with the credential from the server's 0600 settings file (never on a command line)."""

from __future__ import annotations

import pytest
import testinfra

from tests.molecule_checks import HostApi, journal_on_failure, scenario_host


@pytest.fixture(scope="module")
def server() -> testinfra.host.Host:
    return scenario_host("prefect_server")


@pytest.fixture(scope="module")
def client(server) -> HostApi:
    return HostApi(server, env_file="/etc/prefect-server/server.env", url="http://127.0.0.1:4200/api")


@pytest.fixture(scope="module")
def api(client):
    """api(path) GETs, api(path, body) POSTs; returns the decoded answer."""
    return lambda path, body=None: client("GET" if body is None else "POST", path, body)


@pytest.fixture(scope="module")
def api_state(client) -> str:
    """A command printing a hash of the API's objects as the role makes them (pools, queues,
    blocks, automations, with their update times), for the bad-input checks to compare."""
    paths = (
        "/work_pools/filter",
        "/work_pools/production/queues/filter",
        "/block_documents/filter",
        "/automations/filter",
    )
    return "(" + "; ".join(client.command("POST", path, {}) for path in paths) + ") | sha256sum"


# On a failed test, attach the journal to the report.
pytest_runtest_makereport = journal_on_failure("prefect_server", "prefect-server")
