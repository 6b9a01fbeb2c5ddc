"""Fixtures of the postgresql molecule scenarios: the database host and a client host."""

from __future__ import annotations

import pytest
import testinfra

from tests.molecule_checks import scenario_host


@pytest.fixture(scope="module")
def db() -> testinfra.host.Host:
    return scenario_host("prefect_database")


@pytest.fixture(scope="module")
def client() -> testinfra.host.Host:
    return scenario_host("clients")
