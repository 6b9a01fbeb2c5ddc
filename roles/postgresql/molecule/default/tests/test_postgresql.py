"""Verify a converged postgresql role: the cluster runs, and the managed role reaches its database
across the network with its password (SCRAM), over TLS with the certificate verified, never in
clear, and not with a wrong password; a converge that would change
nothing skips the package, settings and unit, and any drift of them is repaired (last: it restarts
the cluster)."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from lab.ansible import playbook, recaps, task_results

SERVICE = "postgresql@15-main.service"
CA = "/etc/prefect-fleet/tls/ca.crt"
HBA = "/etc/postgresql/15/main/pg_hba.conf"
SETTINGS = "/etc/postgresql/15/main/conf.d/50-fleet.conf"
CONVERGE = Path(__file__).resolve().parent.parent / "converge.yml"


def _password(db) -> str:
    return db.ansible.get_variables()["molecule_password"]


def _psql(client, db_name: str, password: str, sql: str, sslmode: str = "verify-full", trust: str = CA):
    """psql as the Prefect server connects: TLS, the certificate checked against the fleet CA (trust)
    and the name."""
    return client.run(
        f"PGPASSWORD={shlex.quote(password)} PGCONNECT_TIMEOUT=10 PGSSLMODE={sslmode} PGSSLROOTCERT={trust} "
        f"psql -h {db_name} -U prefect -d prefect -tAc {shlex.quote(sql)}"
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


def test_the_connection_is_encrypted_with_the_fleet_certificate(db, client):
    result = _psql(
        client,
        db.backend.get_hostname(),
        _password(db),
        "select ssl, version from pg_stat_ssl where pid = pg_backend_pid()",
    )
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() in ("t|TLSv1.3", "t|TLSv1.2")
    key = db.file("/etc/postgresql/15/main/fleet-tls.key")
    assert (key.user, key.mode) == ("postgres", 0o600)


def test_a_connection_in_clear_is_refused(db, client):
    result = _psql(client, db.backend.get_hostname(), _password(db), "select 1", sslmode="disable")
    assert result.rc != 0
    assert "no pg_hba.conf entry" in result.stderr
    assert "no encryption" in result.stderr


def test_a_client_that_does_not_trust_the_fleet_ca_is_refused(db, client):
    result = _psql(
        client, db.backend.get_hostname(), _password(db), "select 1", trust="/etc/ssl/certs/ca-certificates.crt"
    )
    assert result.rc != 0
    assert "certificate verify failed" in result.stderr


def test_password_is_stored_as_scram(db):
    out = db.check_output(
        "runuser -u postgres -- psql -tAc \"select rolpassword from pg_authid where rolname = 'prefect'\""
    )
    assert out.startswith("SCRAM-SHA-256$")


def test_wrong_password_is_refused(db, client):
    result = _psql(client, db.backend.get_hostname(), "not-the-password", "select 1")
    assert result.rc != 0
    assert "password authentication failed" in result.stderr


def _converge():
    result = playbook(
        os.environ["MOLECULE_INVENTORY_FILE"],
        str(CONVERGE),
        env={"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default"},
        cwd=Path.cwd(),
    )
    counters = recaps(result.stdout)
    assert "postgresql-db" in counters, result.stdout[-3000:]
    return result.stdout, counters["postgresql-db"]["changed"]


def test_a_converge_that_changes_nothing_skips_and_one_after_drift_repairs_it(db):
    output, changed = _converge()
    assert changed == 0, output[-3000:]
    assert task_results(output, "postgresql", "Install PostgreSQL") == [("skipping", "postgresql-db")]
    # The roles and databases live in the cluster: checked on every run.
    assert task_results(output, "postgresql", "Create the databases") == [("ok", "postgresql-db")]

    settings = db.check_output(f"sha256sum {SETTINGS}")
    db.run_expect([0], f"echo 'work_mem = 1GB  # edited by hand' >> {SETTINGS} && systemctl stop {SERVICE}")
    # ...and a clear-text entry, as a fleet converged before TLS had: removed again.
    # (the module writes no newline at the end of the file)
    db.run_expect([0], f"printf '\\nhost prefect prefect samenet scram-sha-256\\n' >> {HBA}")
    output, changed = _converge()
    assert changed > 0, output[-3000:]
    assert task_results(output, "postgresql", "Install PostgreSQL") == [("ok", "postgresql-db")]
    assert db.check_output(f"sha256sum {SETTINGS}") == settings
    assert db.service(SERVICE).is_running
    assert "host prefect prefect samenet" not in db.file(HBA).content_string

    output, changed = _converge()
    assert changed == 0, output[-3000:]
    assert task_results(output, "postgresql", "Install PostgreSQL") == [("skipping", "postgresql-db")]
