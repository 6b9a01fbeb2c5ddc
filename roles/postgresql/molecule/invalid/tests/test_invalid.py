"""Each invalid input makes the postgresql role fail with a message that names the problem, before
any file on the host changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.molecule_checks import assert_rejected_without_change, other_messages, scenario_host

CONVERGE = Path(__file__).resolve().parent.parent / "converge.yml"
USER = {"name": "prefect", "password": "secret"}
DB = {"name": "prefect", "owner": "prefect"}

CASES = {
    "port-out-of-range": ({"postgresql_port": 0}, "postgresql_port must be between 1 and 65535"),
    "no-listen-address": (
        {"postgresql_listen_addresses": []},
        "postgresql_listen_addresses must name at least one address",
    ),
    "too-few-connections": ({"postgresql_max_connections": 3}, "postgresql_max_connections must be at least 10"),
    "owner-not-a-managed-role": (
        {"postgresql_users": [USER], "postgresql_databases": [{"name": "prefect", "owner": "someone"}]},
        "Every postgresql_databases[].owner must be listed in postgresql_users; missing: someone",
    ),
    "empty-password": (
        {"postgresql_users": [{"name": "prefect", "password": ""}], "postgresql_databases": [DB]},
        "Every postgresql_users[] entry needs a non-empty password",
    ),
    "user-without-password": ({"postgresql_users": [{"name": "prefect"}]}, "password"),
    "hba-host-without-address": (
        {"postgresql_hba_entries": [{"type": "host", "database": "prefect", "user": "prefect"}]},
        "pg_hba entry for prefect@prefect of type host needs an address",
    ),
    "hba-unknown-method": (
        {"postgresql_hba_entries": [{"database": "prefect", "user": "prefect", "address": "all", "method": "trust"}]},
        "method",
    ),
}


@pytest.fixture(scope="module")
def host():
    return scenario_host("prefect_database")


@pytest.mark.parametrize("case", sorted(CASES))
def test_invalid_input_fails_before_any_change(host, case):
    extra_vars, message = CASES[case]
    assert_rejected_without_change(host, CONVERGE, extra_vars, message, other_messages(CASES, case))
    assert not host.package("postgresql-15").is_installed
