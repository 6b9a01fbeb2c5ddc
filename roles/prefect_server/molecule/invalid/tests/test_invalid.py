"""Each invalid input makes prefect_server fail with a message that names the problem, before any
file on the host changed. The role runs for real against the scenario's systemd container."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.molecule_checks import assert_rejected_without_change, other_messages, scenario_host

CONVERGE = Path(__file__).resolve().parent.parent / "converge.yml"
# An HA replica's settings that hold; each HA case breaks one.
HA = {
    "prefect_server_ha": True,
    "prefect_server_database_backend": "postgresql",
    "prefect_server_database_host": "db",
    "prefect_server_database_password": "x",
    "prefect_server_redis_host": "redis",
    "prefect_server_redis_password": "a-long-redis-password-0123",
}

CASES = {
    "port-out-of-range": ({"prefect_server_port": 70000}, "prefect_server_port must be between 1 and 65535"),
    "port-not-a-number": ({"prefect_server_port": "http"}, "prefect_server_port"),
    "unknown-database-backend": (
        {"prefect_server_database_backend": "mysql"},
        "prefect_server_database_backend must be one of: sqlite, postgresql",
    ),
    "postgresql-without-host": (
        {"prefect_server_database_backend": "postgresql", "prefect_server_database_password": "x"},
        "prefect_server_database_host must name the PostgreSQL host",
    ),
    "postgresql-without-password": (
        {"prefect_server_database_backend": "postgresql", "prefect_server_database_host": "db"},
        "prefect_server_database_password must be set when prefect_server_database_backend is postgresql",
    ),
    "empty-connection-pool": (
        {"prefect_server_database_pool_size": 0},
        "prefect_server_database_pool_size must be at least 1 and prefect_server_database_max_overflow at least 0",
    ),
    "database-port-out-of-range": (
        {"prefect_server_database_port": 0},
        "prefect_server_database_port must be between 1 and 65535",
    ),
    "version-without-constraints": (
        {"prefect_server_version": "3.9.9"},
        "prefect_server_version '3.9.9' has no constraints file pinning prefect==3.9.9",
    ),
    "malformed-auth-string": (
        {"prefect_server_auth_string": "admin-without-password"},
        "prefect_server_auth_string must be empty or 'user:password'",
    ),
    "auth-string-with-whitespace": (
        {"prefect_server_auth_string": "admin:pass word"},
        "prefect_server_auth_string must be empty or 'user:password'",
    ),
    "extra-env-not-a-prefect-setting": (
        {"prefect_server_extra_env": {"LD_PRELOAD": "/tmp/x.so"}},
        "every key of prefect_server_extra_env must look like PREFECT_SETTING_NAME; these do not: LD_PRELOAD",
    ),
    "ui-api-url-not-a-url": (
        {"prefect_server_ui_api_url": "atd-prefect-01:4200"},
        "prefect_server_ui_api_url must be an http(s) URL",
    ),
    "missing-wheelhouse-archive": (
        {"prefect_server_wheelhouse_archive": "/nonexistent/wheels.tar"},
        "prefect_server_wheelhouse_archive must be empty or name an existing file on the controller",
    ),
    "extra-env-not-a-dict": (
        {"prefect_server_extra_env": "PREFECT_X=1"},
        "prefect_server_extra_env must be a mapping of PREFECT_* settings to values, got 'PREFECT_X=1'",
    ),
    "extra-index-not-a-url": (
        {"prefect_server_pip_extra_index_urls": ["mirror.internal/simple"]},
        "every entry of prefect_server_pip_extra_index_urls must be an http(s) or file URL",
    ),
    "ha-on-sqlite": (
        {**HA, "prefect_server_database_backend": "sqlite"},
        "prefect_server_ha needs prefect_server_database_backend postgresql",
    ),
    "ha-without-redis": ({**HA, "prefect_server_redis_host": ""}, "prefect_server_ha needs prefect_server_redis_host"),
    "ha-without-redis-password": (
        {**HA, "prefect_server_redis_password": ""},
        "prefect_server_redis_password must be set when prefect_server_ha is true",
    ),
    "ha-redis-password-too-short": (
        {**HA, "prefect_server_redis_password": "short"},
        "prefect_server_redis_password must be set when prefect_server_ha is true",
    ),
    "redis-user-not-a-name": (
        {**HA, "prefect_server_redis_user": "pre fect"},
        "prefect_server_redis_user must be a name of letters, digits, _ and -",
    ),
    "two-replicas-share-a-port": (
        {**HA, "prefect_server_api_ports": [4200, 4201, 4200]},
        "two API replicas on prefect-server-invalid share a port: prefect_server_api_ports lists 4200 more than once",
    ),
    "several-replicas-without-ha": (
        {"prefect_server_api_ports": [4200, 4201]},
        "several API replicas need the HA setup",
    ),
    "no-api-port": ({**HA, "prefect_server_api_ports": []}, "prefect_server_api_ports must list at least one port"),
    "redis-databases-collide": (
        {**HA, "prefect_server_redis_docket_db": 0},
        "prefect_server_redis_messaging_db and prefect_server_redis_docket_db two different databases",
    ),
    "unknown-load-balancer-host": (
        {**HA, "prefect_server_load_balancer_host": "atd-lb-09"},
        "prefect_server_load_balancer_host must name a host of the inventory, got 'atd-lb-09'",
    ),
}


@pytest.fixture(scope="module")
def host():
    return scenario_host("prefect_server")


@pytest.mark.parametrize("case", sorted(CASES))
def test_invalid_input_fails_before_any_change(host, case):
    extra_vars, message = CASES[case]
    assert_rejected_without_change(host, CONVERGE, extra_vars, message, other_messages(CASES, case))
    assert not host.user("prefect").exists
    assert not host.file("/etc/systemd/system/prefect-server.service").exists


def test_constraints_that_pin_no_uv_fail_before_any_change(host, tmp_path):
    """The hosts build their virtualenvs with uv at the constraints' pin: a constraints file
    without one (an old or hand-made one) is refused before anything is installed."""
    role = Path(__file__).resolve().parents[3]
    version = yaml.safe_load((role / "defaults/main.yml").read_text())["prefect_server_version"]
    source = role.parents[1] / "constraints" / f"prefect-{version}.txt"
    lines = [line for line in source.read_text().splitlines() if not line.startswith("uv==")]
    (tmp_path / f"prefect-{version}.txt").write_text("\n".join(lines) + "\n")
    assert_rejected_without_change(
        host,
        CONVERGE,
        {"prefect_server_version": version, "prefect_server_constraints_dir": str(tmp_path)},
        f"{tmp_path}/prefect-{version}.txt pins no uv",
        sorted({m for _, m in CASES.values() if " " in m}),
    )
    assert not host.user("prefect").exists
