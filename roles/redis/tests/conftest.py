"""Fixtures of the redis molecule scenario: the Redis host and a client host."""

from __future__ import annotations

import pytest
import testinfra

from tests.molecule_checks import journal_on_failure, scenario_host


@pytest.fixture(scope="module")
def redis() -> testinfra.host.Host:
    return scenario_host("prefect_redis")


@pytest.fixture(scope="module")
def client() -> testinfra.host.Host:
    return scenario_host("clients")


pytest_runtest_makereport = journal_on_failure("prefect_redis", "redis-server")
