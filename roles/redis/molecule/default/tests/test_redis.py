"""Verify a converged redis role: the unit, its private configuration, TLS only and Prefect's ACL
user with its password required across the network (the default user off, administrative commands
refused), data kept over a restart, and every bad input rejected before any change."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from tests.molecule_checks import assert_rejected_without_change, other_messages, role_status, snapshot

SCENARIO = Path(os.environ.get("MOLECULE_SCENARIO_DIRECTORY", Path(__file__).parent.parent))
CONVERGE = SCENARIO / "converge.yml"
PASSWORD = yaml.safe_load((SCENARIO / "molecule.yml").read_text())["provisioner"]["inventory"]["group_vars"][
    "prefect_redis"
]["redis_password"]


def _address(redis) -> str:
    return redis.check_output("hostname -I").split()[0]


CA = "/etc/prefect-fleet/tls/ca.crt"


def _cli(
    host,
    address: str,
    command: str,
    password: str | None = PASSWORD,
    user: str = "prefect",
    tls: str = f"--tls --cacert {CA}",
) -> str:
    # REDISCLI_AUTH keeps the password off redis-cli's command line (docker exec runs no sudo).
    auth = f"REDISCLI_AUTH={password} " if password else ""
    who = f"--user {user} " if password else ""
    result = host.run(f"{auth}redis-cli --no-auth-warning {tls} {who}-h {address} {command}")
    return (result.stdout + result.stderr).strip()


def test_unit_active_and_enabled(redis):
    service = redis.service("redis-server.service")
    assert service.is_running
    assert service.is_enabled


def test_the_status_reports_the_unit():
    """What `make status` reads of Redis (tasks_from: status.yml)."""
    assert list(role_status("redis", "prefect_redis", "redis_status").values()) == [
        {"host": "redis-default", "kind": "redis", "unit": "redis-server.service", "state": "active"}
    ]


def test_configuration_is_private(redis):
    conf = redis.file("/etc/redis/redis.conf")
    assert (conf.mode, conf.user, conf.group) == (0o640, "redis", "redis")
    assert f"user prefect on >{PASSWORD} " in conf.content_string
    assert "user default off" in conf.content_string
    key = redis.file("/etc/redis/fleet-tls.key")
    assert (key.mode, key.user) == (0o600, "redis")


def test_a_client_needs_the_password(redis, client):
    address = _address(redis)
    assert "NOAUTH" in _cli(client, address, "ping", password=None)
    assert _cli(client, address, "ping") == "PONG"
    assert "WRONGPASS" in _cli(client, address, "ping", password="not-the-password-0123")


def test_the_default_user_is_off_and_prefects_user_may_not_administer(redis, client):
    address = _address(redis)
    assert "WRONGPASS" in _cli(client, address, "ping", user="default")
    for command in ("config get maxmemory", "flushall", "acl list", "shutdown nosave"):
        assert "NOPERM" in _cli(client, address, command), command
    # What Prefect runs: streams, keys, scripts.
    assert _cli(client, address, "xadd molecule-stream '*' k v").count("-") == 1
    assert _cli(client, address, "eval 'return 1' 0") == "1"


def test_nothing_travels_in_clear_and_the_certificate_is_the_fleet_cas(redis, client):
    address = _address(redis)
    # A client in clear gets no answer from a TLS port.
    assert "PONG" not in _cli(client, address, "ping", tls="")
    # A client that trusts only the system's CAs refuses Redis's certificate.
    assert "certificate verify failed" in _cli(
        client, address, "ping", tls="--tls --cacert /etc/ssl/certs/ca-certificates.crt"
    )


def test_listens_on_the_bound_addresses_only(redis):
    listening = {line.split()[3] for line in redis.check_output("ss -Htln").splitlines()}
    assert f"{_address(redis)}:6379" in listening
    assert "127.0.0.1:6379" in listening
    assert "0.0.0.0:6379" not in listening
    assert "*:6379" not in listening


def test_settings_applied(redis):
    # CONFIG is an administrative command, which no user may run: INFO shows the settings.
    assert "aof_enabled:1" in _cli(redis, "127.0.0.1", "info persistence")
    assert "maxmemory_policy:noeviction" in _cli(redis, "127.0.0.1", "info memory")


def test_data_survives_a_restart(redis):
    _cli(redis, "127.0.0.1", "set molecule-key kept")
    redis.check_output("systemctl restart redis-server.service")
    redis.run_expect(
        [0],
        f"for i in $(seq 1 30); do redis-cli --tls --cacert {CA} -h 127.0.0.1 ping 2>&1 | grep -q NOAUTH && exit 0; sleep 1; done",
    )
    assert _cli(redis, "127.0.0.1", "get molecule-key") == "kept"


def test_the_password_stays_out_of_the_journal_and_process_list(redis):
    assert PASSWORD not in redis.check_output("journalctl --no-pager -o cat")
    assert PASSWORD not in redis.check_output("ps -eo args")


CASES = {
    "port-out-of-range": ({"redis_port": 0}, "redis_port must be between 1 and 65535"),
    "no-bind-address": ({"redis_bind_addresses": []}, "redis_bind_addresses must name at least one address"),
    "bind-to-a-name": (
        {"redis_bind_addresses": ["atd-redis-01"]},
        "redis_bind_addresses must be IP addresses (Redis does not resolve names); these are not: atd-redis-01",
    ),
    "one-database": ({"redis_databases": 1}, "redis_databases must be at least 2"),
    "bad-memory-limit": ({"redis_maxmemory": "lots"}, "redis_maxmemory must be empty or a size"),
    "no-password": ({"redis_password": ""}, "redis_password must be set"),
    "password-too-short": ({"redis_password": "short"}, "redis_password must be set"),
    "password-with-a-quote": ({"redis_password": 'a-long-password-with-"quote'}, "redis_password must be set"),
    "default-user": (
        {"redis_user": "default"},
        "redis_user must be a name of letters, digits, _ and - other than 'default'",
    ),
    "tls-without-key": (
        {"redis_tls_private_key": ""},
        "redis_tls_certificate, redis_tls_private_key and redis_tls_ca_file go together",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_invalid_input_fails_before_any_change(redis, case):
    extra_vars, message = CASES[case]
    # Redis' own data directory changes with its data, not with the role.
    state = snapshot(prune=("/var/lib/systemd", "/var/lib/redis"))
    assert_rejected_without_change(redis, CONVERGE, extra_vars, message, other_messages(CASES, case), state)
