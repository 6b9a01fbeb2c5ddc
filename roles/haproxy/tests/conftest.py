"""Fixtures of the haproxy molecule scenario: the load balancer host and a client host."""

from __future__ import annotations

import pytest
import testinfra

from tests.molecule_checks import journal_on_failure, scenario_host


@pytest.fixture(scope="module")
def lb() -> testinfra.host.Host:
    return scenario_host("prefect_load_balancer")


@pytest.fixture(scope="module")
def client() -> testinfra.host.Host:
    return scenario_host("clients")


pytest_runtest_makereport = journal_on_failure("prefect_load_balancer", "haproxy")
