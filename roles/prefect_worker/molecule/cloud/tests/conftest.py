"""Fixtures of the prefect_worker cloud scenario: the worker host and the stand-in's host."""

from __future__ import annotations

import pytest
import testinfra

from tests.molecule_checks import journal_on_failure, scenario_host


@pytest.fixture(scope="module")
def worker() -> testinfra.host.Host:
    return scenario_host("prefect_workers")


@pytest.fixture(scope="module")
def standin() -> testinfra.host.Host:
    return scenario_host("cloud_standin")


pytest_runtest_makereport = journal_on_failure("prefect_workers", "prefect-*")
