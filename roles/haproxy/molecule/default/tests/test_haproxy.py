"""Verify a converged haproxy role: it serves TLS only, certified by the fleet CA, in front of each
replica and at the load balancer, which verifies each replica's front; it sends traffic only to
replicas that answer their health check, a stopped replica costs clients no error, drains go
through the admin socket, the stats page wants its credentials, a new certificate is served after
a converge, and every bad input is rejected before any change."""

from __future__ import annotations

import csv
import io
import json
import os
import time
from pathlib import Path

import pytest

from lab.ansible import playbook, task_output, task_results
from tests.molecule_checks import assert_rejected_without_change, other_messages, role_status

CONVERGE = Path(__file__).resolve().parent.parent / "converge.yml"
STATS_AUTH = "stats:molecule-Stats-Pa55"
CA = "/etc/prefect-fleet/tls/ca.crt"


def _converge() -> str:
    result = playbook(os.environ["MOLECULE_INVENTORY_FILE"], str(CONVERGE), check=False, cwd=Path.cwd())
    assert result.returncode == 0, result.stdout[-3000:]
    return result.stdout


def _address(lb) -> str:
    return lb.check_output("hostname -I").split()[0]


def _get(client, url: str, auth: str = "") -> tuple[int, str]:
    """(status, body) of a GET from the client, which trusts the fleet CA alone."""
    user = f"-u {auth} " if auth else ""
    out = client.check_output(
        f"curl -s --cacert {CA} -o /tmp/body -w '%{{http_code}}' {user}{url}; echo; cat /tmp/body"
    )
    code, _, body = out.partition("\n")
    return int(code), body


def _admin(lb, command: str) -> str:
    """One command on HAProxy's admin socket; its whole answer (HAProxy closes after it)."""
    return lb.check_output(
        f"echo '{command}' | python3 -c \"import socket,sys; s=socket.socket(socket.AF_UNIX); "
        "s.connect('/run/haproxy/admin.sock'); s.sendall(sys.stdin.buffer.read()); "
        "print(b''.join(iter(lambda: s.recv(65536), b'')).decode())\""
    )


def _status(lb) -> dict[str, str]:
    """Each replica's status in the backend, read from the admin socket."""
    out = _admin(lb, "show stat")
    rows = csv.DictReader(io.StringIO(out.lstrip("# ")))
    return {
        r["svname"]: r["status"] for r in rows if r["pxname"] == "prefect_api" and r["svname"].startswith("replica")
    }


def _wait_status(lb, wanted: dict[str, str], seconds: float = 30) -> dict[str, str]:
    deadline = time.monotonic() + seconds
    while (status := _status(lb)) != wanted and time.monotonic() < deadline:
        time.sleep(0.5)
    return status


def test_unit_active_and_enabled(lb):
    service = lb.service("haproxy.service")
    assert service.is_running
    assert service.is_enabled


def test_the_status_reports_the_unit_and_each_replica_as_the_stats_page_has_it(lb):
    """What `make status` reads of a load balancer (tasks_from: status.yml), with the stats page's
    credentials."""
    assert _wait_status(lb, {"replica-a": "UP", "replica-b": "UP"}) == {"replica-a": "UP", "replica-b": "UP"}
    (status,) = role_status("haproxy", "prefect_load_balancer", "haproxy_status").values()
    assert (status["kind"], status["unit"], status["state"]) == ("lb", "haproxy.service", "active")
    assert status["replicas"] == {"replica-a": "UP", "replica-b": "UP"}


def test_configuration_is_private(lb):
    conf = lb.file("/etc/haproxy/haproxy.cfg")
    assert (conf.mode, conf.user, conf.group) == (0o640, "root", "haproxy")


def test_both_replicas_serve(lb, client):
    assert _wait_status(lb, {"replica-a": "UP", "replica-b": "UP"}) == {"replica-a": "UP", "replica-b": "UP"}
    seen = {_get(client, f"https://{_address(lb)}:4200/api/ready")[1] for _ in range(6)}
    assert seen == {"replica-a", "replica-b"}


def test_tls_only_certified_by_the_fleet_ca(lb, client):
    """The load balancer and each TLS front: HTTPS with the fleet CA; not without it; never plain
    HTTP. The replicas themselves listen on loopback only."""
    address = _address(lb)
    for port, name in ((4200, None), (8001, "replica-a"), (8002, "replica-b")):
        code, body = _get(client, f"https://{address}:{port}/api/ready")
        assert code == 200
        assert name is None or body == name
        unverified = client.run(f"curl -s -o /dev/null https://{address}:{port}/api/ready")
        assert unverified.rc == 60, f"{port}: curl trusted a certificate of the fleet CA without it"
        plain = client.run(f"curl -s -o /dev/null -w '%{{http_code}}' http://{address}:{port}/api/ready")
        assert plain.stdout.strip() == "000", f"{port}: answered plain HTTP"
    listening = {line.split()[3] for line in lb.check_output("ss -ltnH").splitlines()}
    assert {"127.0.0.1:8001", "127.0.0.1:8002", f"{address}:8001", f"{address}:8002", f"{address}:4200"} <= listening
    wide = [a for a in listening if a.rsplit(":", 1)[0] in ("0.0.0.0", "*", "[::]")]
    assert not [a for a in wide if a.rsplit(":", 1)[1] in ("4200", "8001", "8002")], wide


def test_a_stopped_replica_costs_no_error(lb, client):
    url = f"https://{_address(lb)}:4200/api/ready"
    try:
        lb.check_output("systemctl stop replica-a.service")
        # At once, before any health check saw it: its front answers 503 (its process is gone),
        # and the load balancer sends the request to replica-b.
        answers = [_get(client, url) for _ in range(10)]
        assert answers == [(200, "replica-b")] * 10
        assert _wait_status(lb, {"replica-a": "DOWN", "replica-b": "UP"})["replica-a"] == "DOWN"
    finally:
        lb.check_output("systemctl start replica-a.service")
    assert _wait_status(lb, {"replica-a": "UP", "replica-b": "UP"}) == {"replica-a": "UP", "replica-b": "UP"}


def test_a_drained_replica_gets_no_requests(lb, client):
    url = f"https://{_address(lb)}:4200/api/ready"
    drain = "set server prefect_api/replica-a state drain"
    ready = "set server prefect_api/replica-a state ready"
    try:
        _admin(lb, drain)
        assert _status(lb)["replica-a"] == "DRAIN"
        assert {_get(client, url)[1] for _ in range(6)} == {"replica-b"}
    finally:
        _admin(lb, ready)
    assert _status(lb)["replica-a"] == "UP"


def test_stats_page_wants_its_credentials(lb, client):
    address = _address(lb)
    assert _get(client, f"http://{address}:8404/stats")[0] == 401
    code, body = _get(client, f"'http://{address}:8404/stats;csv'", auth=STATS_AUTH)
    assert code == 200
    assert "prefect_api,replica-a" in body


def test_a_new_certificate_is_served_after_a_converge(lb, client):
    """The configuration carries the certificate's checksum: a new certificate reloads HAProxy."""
    address = _address(lb)
    serial = f"echo | openssl s_client -connect {address}:4200 -CAfile {CA} 2>/dev/null | openssl x509 -noout -serial"
    before = client.check_output(serial)
    rotate = playbook(
        os.environ["MOLECULE_INVENTORY_FILE"],
        str(CONVERGE.parent / "prepare.yml"),
        "--limit",
        "all",
        "-e",
        json.dumps({"tls_ca_rotate": True}),
        check=False,
        cwd=Path.cwd(),
    )
    assert rotate.returncode == 0, rotate.stdout[-3000:]
    assert "RUNNING HANDLER [haproxy : Reload HAProxy]" in _converge()
    after = client.check_output(serial)
    assert after.startswith("serial=")
    assert after != before
    assert _get(client, f"https://{address}:4200/api/ready")[0] == 200


def test_a_converge_that_changes_nothing_is_one_task_and_an_edited_configuration_is_repaired(lb, client):
    out = _converge()
    assert "skipping" in {status for status, _ in task_results(out, "haproxy", "Write the HAProxy configuration")}
    configuration = lb.check_output("sha256sum /etc/haproxy/haproxy.cfg")
    lb.check_output("echo '# edited by hand' >> /etc/haproxy/haproxy.cfg")
    out = _converge()
    why = task_output(out, "haproxy", "Say why this host converges in full")
    assert "/etc/haproxy/haproxy.cfg changed" in why, why
    assert lb.check_output("sha256sum /etc/haproxy/haproxy.cfg") == configuration
    assert "RUNNING HANDLER [haproxy : Reload HAProxy]" in out
    assert _get(client, f"https://{_address(lb)}:4200/api/ready")[0] == 200


CASES = {
    "no-replica": (
        {"haproxy_backend_servers": [], "haproxy_local_fronts": []},
        "haproxy_backend_servers must list at least one API replica",
    ),
    "port-out-of-range": (
        {"haproxy_backend_servers": [{"name": "a", "address": "127.0.0.1", "port": 70000}]},
        "must be between 1 and 65535, got 4200, 8404, 8001, 8002, 70000",
    ),
    "fronts-without-address": (
        {"haproxy_local_fronts_address": ""},
        "haproxy_local_fronts needs haproxy_local_fronts_address",
    ),
    "front-on-the-balancers-port": ({"haproxy_local_fronts": [4200]}, "must not share a port on one host"),
    "tls-replicas-without-ca": ({"haproxy_tls_ca_file": ""}, "behind TLS fronts (tls true) need haproxy_tls_ca_file"),
    "open-stats-without-password": (
        {"haproxy_stats_address": "0.0.0.0", "haproxy_stats_auth": ""},
        "The stats page would listen on 0.0.0.0 without a password",
    ),
    "stats-on-the-frontend-port": (
        {"haproxy_stats_port": 4200},
        "haproxy_stats_port must differ from haproxy_frontend_port",
    ),
    "bad-server-name": (
        {"haproxy_backend_servers": [{"name": "a b", "address": "127.0.0.1", "port": 8001}]},
        "every haproxy_backend_servers[].name must be letters, digits",
    ),
    "duplicate-server-name": (
        {
            "haproxy_backend_servers": [
                {"name": "a", "address": "127.0.0.1", "port": 8001},
                {"name": "a", "address": "127.0.0.1", "port": 8002},
            ]
        },
        "haproxy_backend_servers names must be unique; repeated: a",
    ),
    "two-replicas-share-a-port": (
        {
            "haproxy_backend_servers": [
                {"name": "a", "address": "127.0.0.1", "port": 8001},
                {"name": "b", "address": "127.0.0.1", "port": 8001},
            ]
        },
        "two haproxy_backend_servers share an address and port: 127.0.0.1:8001",
    ),
    "health-path-not-a-path": ({"haproxy_health_path": "api/ready"}, "haproxy_health_path must be a path"),
    "check-too-often": ({"haproxy_check_interval_ms": 10}, "haproxy_check_interval_ms must be at least 100"),
    "zero-timeout": ({"haproxy_timeout_server": 0}, "haproxy_timeout_connect, _client, _server and _tunnel"),
    "malformed-stats-auth": ({"haproxy_stats_auth": "stats-without-password"}, "haproxy_stats_auth must be empty or"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_invalid_input_fails_before_any_change(lb, case):
    extra_vars, message = CASES[case]
    assert_rejected_without_change(lb, CONVERGE, extra_vars, message, other_messages(CASES, case))
