"""Shared by every role's molecule verifiers (roles/<role>/molecule/<scenario>/tests/): the
scenario's hosts as fixtures, each by its inventory group, and, on a failed test, the journal of
the fleet's units on every host of the scenario that runs them."""

from __future__ import annotations

import os

import pytest
import testinfra

from tests.molecule_checks import scenario_host

# The units of each group whose journal a failed test's report carries.
JOURNALS = {
    "prefect_server": "prefect-server*",
    "prefect_workers": "prefect-*",
    "prefect_load_balancer": "haproxy",
    "prefect_redis": "redis-server",
}


@pytest.fixture(scope="module")
def server() -> testinfra.host.Host:
    return scenario_host("prefect_server")


@pytest.fixture(scope="module")
def worker() -> testinfra.host.Host:
    return scenario_host("prefect_workers")


@pytest.fixture(scope="module")
def client() -> testinfra.host.Host:
    return scenario_host("clients")


@pytest.fixture(scope="module")
def db() -> testinfra.host.Host:
    return scenario_host("prefect_database")


@pytest.fixture(scope="module")
def redis() -> testinfra.host.Host:
    return scenario_host("prefect_redis")


@pytest.fixture(scope="module")
def lb() -> testinfra.host.Host:
    return scenario_host("prefect_load_balancer")


@pytest.fixture(scope="module")
def standin() -> testinfra.host.Host:
    return scenario_host("cloud_standin")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # noqa: ARG001 -- pytest's hook signature
    outcome = yield
    report = outcome.get_result()
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE")
    if report.when != "call" or not report.failed or not inventory:
        return
    for group, units in JOURNALS.items():
        for host in testinfra.get_hosts([f"ansible://{group}?ansible_inventory={inventory}"]):
            journal = host.run(f"journalctl -u '{units}' --no-pager -n 80")
            report.sections.append((f"journalctl -u {units} on {host.backend.get_hostname()}", journal.stdout))
