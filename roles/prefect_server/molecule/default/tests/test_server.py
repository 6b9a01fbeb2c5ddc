"""Verify a converged prefect_server: the unit, its user and secrets, the API on loopback only,
and that a flow run created through the API survives a server restart."""

from __future__ import annotations

import json
import uuid

from tests.molecule_checks import HostApi

SERVICE = "prefect-server.service"
ENV_FILE = "/etc/prefect-server/server.env"


def _settings(server) -> dict[str, str]:
    text = server.check_output(f"cat {ENV_FILE}")
    pairs = (line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return {key: value.strip('"') for key, value in pairs}


def _wait_healthy(server, port: str) -> None:
    probe = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/api/health', timeout=5)"
    server.run_expect(
        [0], f'for i in $(seq 1 90); do python3 -c "{probe}" 2>/dev/null && exit 0; sleep 2; done; exit 1'
    )


def test_unit_active_and_enabled(server):
    service = server.service(SERVICE)
    assert service.is_running
    assert service.is_enabled


def test_runs_as_service_user(server):
    pid = server.check_output(f"systemctl show -p MainPID --value {SERVICE}")
    assert pid != "0"
    assert server.check_output(f"ps -o user= -p {pid}") == "prefect"
    assert server.user("prefect").shell == "/usr/sbin/nologin"


def test_secrets_file_is_private(server):
    env = server.file(ENV_FILE)
    assert env.mode == 0o600
    assert env.user == "prefect"
    assert "PREFECT_SERVER_DATABASE_MIGRATE_ON_START" in env.content_string


def test_database_settings_match_the_backend(server):
    settings = _settings(server)
    pool = {key: settings.get(key) for key in settings if key.startswith("PREFECT_SERVER_DATABASE_SQLALCHEMY_")}
    if settings["PREFECT_SERVER_DATABASE_DRIVER"] == "postgresql+asyncpg":
        assert pool == {
            "PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_SIZE": "20",
            "PREFECT_SERVER_DATABASE_SQLALCHEMY_MAX_OVERFLOW": "30",
            "PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_TIMEOUT": "30",
            "PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_RECYCLE": "3600",
            # The postgresql scenario has the fleet's layout: TLS, the certificate and its name verified.
            "PREFECT_SERVER_DATABASE_SQLALCHEMY_CONNECT_ARGS_TLS_ENABLED": "true",
            "PREFECT_SERVER_DATABASE_SQLALCHEMY_CONNECT_ARGS_TLS_CA_FILE": "/etc/prefect-fleet/tls/ca.crt",
            "PREFECT_SERVER_DATABASE_SQLALCHEMY_CONNECT_ARGS_TLS_CHECK_HOSTNAME": "true",
        }
        assert (
            settings["PREFECT_SERVER_DATABASE_TIMEOUT"],
            settings["PREFECT_SERVER_DATABASE_CONNECTION_TIMEOUT"],
        ) == (
            "10",
            "5",
        )
    else:
        assert pool == {}, "the pool settings only apply to PostgreSQL"


def test_api_answers_on_loopback_and_nowhere_else(server, client):
    """The server listens on loopback only (a TLS front on the host serves the network): another
    host is refused; the host itself reaches the API, with the credential of its settings file."""
    settings = _settings(server)
    port = settings["PREFECT_SERVER_API_PORT"]
    assert settings["PREFECT_SERVER_API_HOST"] == "127.0.0.1"
    remote = HostApi(client, url=f"http://{server.backend.get_hostname()}:{port}/api")
    refused = client.run(remote.command("GET", "/health"))
    assert refused.rc != 0
    assert "Connection refused" in refused.stderr, refused.stderr[-500:]
    base = f"http://127.0.0.1:{port}/api"
    status, body = HostApi(server, url=base).request("GET", "/health")
    assert (status, body.strip()) == (200, "true")
    status, body = HostApi(server, env_file=ENV_FILE, url=base).request("GET", "/admin/version")
    assert status == 200
    assert json.loads(body) == server.check_output(
        "/opt/prefect-server/venvs/*/bin/python -c 'import prefect; print(prefect.__version__)'"
    )


def test_auth_is_enforced_when_set(server):
    settings = _settings(server)
    base = f"http://127.0.0.1:{settings['PREFECT_SERVER_API_PORT']}/api"
    status, _ = HostApi(server, url=base).request("GET", "/admin/version")
    expected = 401 if settings.get("PREFECT_SERVER_API_AUTH_STRING") else 200
    assert status == expected


def test_flow_run_survives_restart(server):
    settings = _settings(server)
    port = settings["PREFECT_SERVER_API_PORT"]
    base = f"http://127.0.0.1:{port}/api"
    api = HostApi(server, env_file=ENV_FILE, url=base)
    name = f"molecule-{uuid.uuid4().hex[:8]}"

    status, body = api.request("POST", "/flows/", {"name": name})
    assert status in (200, 201), body
    flow_id = json.loads(body)["id"]
    status, body = api.request("POST", "/flow_runs/", {"flow_id": flow_id, "name": name})
    assert status in (200, 201), body
    run_id = json.loads(body)["id"]

    before = server.check_output(f"systemctl show -p MainPID --value {SERVICE}")
    server.run_expect([0], f"systemctl restart {SERVICE}")
    _wait_healthy(server, port)
    assert server.check_output(f"systemctl show -p MainPID --value {SERVICE}") != before

    status, body = api.request("GET", f"/flow_runs/{run_id}")
    assert status == 200, body
    run = json.loads(body)
    assert (run["id"], run["name"], run["flow_id"]) == (run_id, name, flow_id)


def test_flows_are_stored_in_the_configured_database(server, client):
    settings = _settings(server)
    if settings["PREFECT_SERVER_DATABASE_DRIVER"] == "postgresql+asyncpg":
        # The client of the postgresql scenario is the database host itself.
        count = client.check_output(
            "runuser -u postgres -- psql -tAc 'select count(*) from flow' %s", settings["PREFECT_SERVER_DATABASE_NAME"]
        )
        assert not server.file("/var/lib/prefect-server/prefect.db").exists
        # Every connection of the server's role comes over TLS (hostssl admits no other).
        encrypted = client.check_output(
            "runuser -u postgres -- psql -tAc %s",
            "select count(*), count(*) filter (where s.ssl) from pg_stat_activity a join pg_stat_ssl s using (pid) "
            "where a.usename = 'prefect'",
        )
        total, over_tls = encrypted.split("|")
        assert int(total) >= 1, encrypted
        assert total == over_tls, encrypted
    else:
        count = server.check_output(
            "%s -c \"import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from flow')"
            '.fetchone()[0])" %s',
            "/usr/bin/python3",
            settings["PREFECT_SERVER_DATABASE_NAME"],
        )
    assert int(count) >= 1


def test_no_secret_in_the_journal_or_a_command_line(server):
    """The migration ran during the converge; neither it nor anything else put the auth password or
    the database password in the journal (sudo logs command lines there) or on a command line.
    The secrets are read into a private file on the host, never passed on a command line here."""
    script = r"""
umask 077; patterns=$(mktemp)
sed -n -e 's/^PREFECT_SERVER_API_AUTH_STRING="[^:]*:\(.*\)"$/\1/p' \
       -e 's/^PREFECT_SERVER_DATABASE_PASSWORD="\(.*\)"$/\1/p' /etc/prefect-server/server.env > "$patterns"
secrets=$(wc -l < "$patterns")
journal=$(journalctl --no-pager --output verbose | grep -cFf "$patterns")
commands=$(for f in /proc/[0-9]*/cmdline; do tr '\0' ' ' < "$f" 2>/dev/null; echo; done | grep -cFf "$patterns")
rm -f "$patterns"
echo "$secrets $journal $commands"
"""
    secrets, journal, commands = (int(n) for n in server.run(script).stdout.split())
    assert secrets >= 1, "the scenario has a secret to look for"
    assert server.run("journalctl -u prefect-server-migrate.service --no-pager -o cat").stdout.strip()
    assert (journal, commands) == (0, 0)
