"""Verify a converged postgresql role: the cluster runs, and the managed role reaches its database
across the network with its password (SCRAM), and not with a wrong one."""

from __future__ import annotations

import shlex

SERVICE = "postgresql@15-main.service"


def _password(db) -> str:
    return db.ansible.get_variables()["molecule_password"]


def _psql(client, db_name: str, password: str, sql: str):
    return client.run(
        f"PGPASSWORD={shlex.quote(password)} PGCONNECT_TIMEOUT=10 psql -h {db_name} -U prefect -d prefect -tAc {shlex.quote(sql)}"
    )


def test_cluster_active_and_enabled(db):
    service = db.service(SERVICE)
    assert service.is_running
    assert service.is_enabled
    assert db.socket("tcp://0.0.0.0:5432").is_listening


def test_role_connects_across_the_network(db, client):
    result = _psql(client, db.backend.get_hostname(), _password(db), "select current_user, current_database()")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "prefect|prefect"


def test_password_is_stored_as_scram(db):
    out = db.check_output(
        "runuser -u postgres -- psql -tAc \"select rolpassword from pg_authid where rolname = 'prefect'\""
    )
    assert out.startswith("SCRAM-SHA-256$")


def test_wrong_password_is_refused(db, client):
    result = _psql(client, db.backend.get_hostname(), "not-the-password", "select 1")
    assert result.rc != 0
    assert "password authentication failed" in result.stderr
