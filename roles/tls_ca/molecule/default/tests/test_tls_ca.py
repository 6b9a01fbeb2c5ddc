"""Verify a converged tls_ca role: the fleet CA stays on the controller, the server's certificate
names it and verifies against the CA, a client trusts that server with the CA and not without it,
rotation issues a new key and certificate, certificates from the vault replace the fleet CA's, and
every bad input is rejected before any change."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from lab.ansible import playbook, task_output, task_results
from tests.molecule_checks import assert_rejected_without_change, other_messages

CONVERGE = Path(__file__).resolve().parent.parent / "converge.yml"
CA_DIR = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / "ca"
TLS = "/etc/prefect-fleet/tls"
PORT = 8443
# A TLS server on the server host with its certificate, and a client that verifies it with the
# CA file it is given (or with the system's CAs), by the server's name.
SERVE = (
    "import http.server, ssl; s = http.server.HTTPServer(('0.0.0.0', {port}), http.server.SimpleHTTPRequestHandler); "
    "c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); c.load_cert_chain('{tls}/host.crt', '{tls}/host.key'); "
    "s.socket = c.wrap_socket(s.socket, server_side=True); s.serve_forever()"
)
CHECK = (
    "import socket, ssl, sys; c = ssl.create_default_context(cafile=sys.argv[1] or None); "
    "s = c.wrap_socket(socket.create_connection((sys.argv[2], {port}), timeout=10), server_hostname=sys.argv[2]); "
    "print(s.getpeercert()['serialNumber'])"
)


def _converge(*extra: str):
    result = playbook(os.environ["MOLECULE_INVENTORY_FILE"], str(CONVERGE), *extra, check=False, cwd=Path.cwd())
    assert result.returncode == 0, result.stdout[-3000:]
    return result.stdout


def _serial(server) -> str:
    return server.check_output(f"openssl x509 -in {TLS}/host.crt -noout -serial").removeprefix("serial=").upper()


@pytest.fixture
def tls_server(server):
    """The server's certificate served on PORT, for as long as a test needs it."""
    server.run("systemctl stop tls-ca-probe.service; systemctl reset-failed tls-ca-probe.service")
    source = SERVE.format(port=PORT, tls=TLS)
    server.check_output(f"systemd-run --unit tls-ca-probe.service python3 -c {shlex.quote(source)}")
    server.check_output(
        f"for i in $(seq 1 50); do python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", {PORT}))' "
        "2>/dev/null && exit 0; sleep 0.2; done; exit 1"
    )
    yield
    server.run("systemctl stop tls-ca-probe.service")


def _verify(client, ca_file: str):
    return client.run(f"python3 -c {shlex.quote(CHECK.format(port=PORT))} {shlex.quote(ca_file)} tls-ca-server")


def test_the_ca_key_stays_on_the_controller(server, client):
    assert (CA_DIR.stat().st_mode & 0o777, (CA_DIR / "ca.key").stat().st_mode & 0o777) == (0o700, 0o600)
    key_line = (CA_DIR / "ca.key").read_text().splitlines()[1]
    for host in (server, client):
        found = host.run(f"grep -rlF {shlex.quote(key_line)} /etc /opt /root /var/lib 2>/dev/null")
        assert found.stdout == "", f"the CA's key is on {host.backend.get_hostname()}: {found.stdout}"


def test_every_host_trusts_the_ca_and_only_the_server_has_a_key(server, client):
    ca = CA_DIR.joinpath("ca.crt").read_text().strip()
    for host in (server, client):
        assert host.file(f"{TLS}/ca.crt").content_string.strip() == ca
        assert host.file(f"{TLS}/ca.crt").mode == 0o644
    for name in ("host.key", "host.pem"):
        key = server.file(f"{TLS}/{name}")
        assert (key.mode, key.user, key.group) == (0o600, "root", "root")
        assert not client.file(f"{TLS}/{name}").exists
    assert not client.file(f"{TLS}/host.crt").exists


def test_each_further_ca_certifies_its_own_certificates_and_no_other(server, client):
    """tls_ca_authorities: a CA each, on the controller only; a certificate of one is worthless to
    a peer that trusts another (the fleet CA or the other further CA)."""

    def verify(ca: Path, certificate: Path) -> bool:
        return subprocess.run(["openssl", "verify", "-CAfile", ca, certificate], capture_output=True).returncode == 0

    production, staging = CA_DIR / "dask-production", CA_DIR / "dask-staging"
    assert sorted(p.name for p in production.iterdir()) == [
        "ca.crt",
        "ca.key",
        "client.crt",
        "client.key",
        "scheduler.crt",
        "scheduler.key",
    ]
    assert (production.stat().st_mode & 0o777, (production / "client.key").stat().st_mode & 0o777) == (0o700, 0o600)
    assert verify(production / "ca.crt", production / "client.crt")
    assert verify(production / "ca.crt", production / "scheduler.crt")
    assert verify(staging / "ca.crt", staging / "client.crt")
    assert not verify(production / "ca.crt", staging / "client.crt")
    assert not verify(CA_DIR / "ca.crt", production / "client.crt")
    assert not verify(production / "ca.crt", CA_DIR / "hosts" / "tls-ca-server.crt")
    for host in (server, client):
        assert (
            host.run(f"grep -rlF {shlex.quote((production / 'ca.key').read_text().splitlines()[1])} /etc /opt").stdout
            == ""
        )


def test_the_servers_certificate_names_it_and_verifies_against_the_ca(server):
    assert server.check_output(f"openssl verify -CAfile {TLS}/ca.crt {TLS}/host.crt") == f"{TLS}/host.crt: OK"
    names = server.check_output(f"openssl x509 -in {TLS}/host.crt -noout -ext subjectAltName")
    address = server.check_output("hostname -I").split()[0]
    assert "DNS:tls-ca-server" in names
    assert f"IP Address:{address}" in names
    usage = server.check_output(f"openssl x509 -in {TLS}/host.crt -noout -ext extendedKeyUsage,basicConstraints")
    assert "TLS Web Server Authentication" in usage
    assert "CA:FALSE" in usage


@pytest.mark.usefixtures("tls_server")
def test_a_client_trusts_the_server_with_the_ca_and_not_without(server, client):
    trusted = _verify(client, f"{TLS}/ca.crt")
    assert trusted.rc == 0, trusted.stderr
    assert trusted.stdout.strip() == _serial(server)
    refused = _verify(client, "")
    assert refused.rc != 0
    assert "CERTIFICATE_VERIFY_FAILED" in refused.stderr


@pytest.mark.usefixtures("tls_server")
def test_rotation_issues_a_new_key_and_certificate_that_clients_still_trust(server, client):
    before = (_serial(server), server.check_output(f"sha256sum {TLS}/host.key"))
    ca_before = CA_DIR.joinpath("ca.crt").read_text()
    further = CA_DIR / "dask-production" / "client.crt"
    further_before = further.read_text()
    _converge("-e", json.dumps({"tls_ca_rotate": True}))
    assert further.read_text() == further_before, "the further CAs' certificates rotate apart"
    after = (_serial(server), server.check_output(f"sha256sum {TLS}/host.key"))
    assert after[0] != before[0], "a new certificate"
    assert after[1] != before[1], "a new key"
    assert CA_DIR.joinpath("ca.crt").read_text() == ca_before, "the CA itself stays"
    server.check_output("systemctl restart tls-ca-probe.service && sleep 1")
    trusted = _verify(client, f"{TLS}/ca.crt")
    assert trusted.rc == 0, trusted.stderr
    assert trusted.stdout.strip() == after[0]
    # Without rotation, a converge leaves it as it is.
    recap = _converge().split("PLAY RECAP", 1)[1]
    assert "changed=0" in recap
    assert not re.search(r"changed=[1-9]", recap), recap
    # tls_ca_rotate_authorities: every further certificate again, the host's as it was.
    _converge("-e", json.dumps({"tls_ca_rotate_authorities": True}))
    assert further.read_text() != further_before
    assert _serial(server) == after[0]


def _statuses(out: str, task: str) -> set[str]:
    return {status for status, _ in task_results(out, "tls_ca", task)}


def test_a_converge_that_changes_nothing_issues_nothing_and_drift_on_either_side_is_repaired(server):
    out = _converge()
    # One read on the controller and one on each host decide; nothing is issued or installed.
    assert "skipping" in _statuses(out, "Say why the CAs are issued in full"), out[-3000:]
    assert "skipping" in _statuses(out, "Make the CA's key (prefect-fleet CA)"), out[-3000:]
    assert "TASK [tls_ca : Make the host's key]" not in out
    assert "TASK [tls_ca : Install the CA certificate every client trusts]" not in out
    # A file edited on a host, a certificate removed on the controller: each side says why, and
    # the converge repairs it.
    pem = server.check_output(f"sha256sum {TLS}/host.pem")
    server.check_output(f"echo '# edited' >> {TLS}/host.pem && chmod 0644 {TLS}/host.pem")
    further = CA_DIR / "dask-staging" / "client.crt"
    further.unlink()
    out = _converge()
    assert f"{TLS}/host.pem changed" in task_output(
        out, "tls_ca", "Say why this host's certificates are installed in full"
    )
    assert f"{further} is missing" in task_output(out, "tls_ca", "Say why the CAs are issued in full")
    assert server.check_output(f"sha256sum {TLS}/host.pem") == pem
    assert server.file(f"{TLS}/host.pem").mode == 0o600
    ca = CA_DIR / "dask-staging" / "ca.crt"
    verified = subprocess.run(["openssl", "verify", "-CAfile", str(ca), str(further)], capture_output=True, text=True)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_certificates_from_the_vault_replace_the_fleet_cas(server, client, tmp_path):
    """An organisation's own CA and certificates, given as vault values (here the fleet CA's own
    files, read as text): the role makes and issues nothing, and installs what it is given."""
    # tls_ca_dir stays: it holds the further CAs (tls_ca_authorities) then, and nothing else.
    own = {
        "tls_ca_certificate": CA_DIR.joinpath("ca.crt").read_text(),
        "tls_ca_host_certificate": CA_DIR.joinpath("hosts/tls-ca-server.crt").read_text(),
        "tls_ca_host_private_key": CA_DIR.joinpath("hosts/tls-ca-server.key").read_text(),
    }
    # Marked: the host's files must become exactly what the vault gives.
    server.check_output(f"echo stale > {TLS}/host.crt")
    path = tmp_path / "vault.json"
    path.write_text(json.dumps(own))
    _converge("-e", f"@{path}")
    assert server.file(f"{TLS}/host.crt").content_string.strip() == own["tls_ca_host_certificate"].strip()
    assert client.file(f"{TLS}/ca.crt").content_string.strip() == own["tls_ca_certificate"].strip()


CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"
# The host's own certificate and key from the vault, so that a case breaks only its own rule.
HOST = {"tls_ca_host_certificate": CERT, "tls_ca_host_private_key": KEY}
# Without tls_ca_dir, the scenario's further CAs would break a rule of their own.
NO_AUTHORITIES = {"tls_ca_authorities": {}}
CASES = {
    "no-source": ({"tls_ca_dir": "", **NO_AUTHORITIES}, "Set tls_ca_dir (a directory on the controller"),
    "authority-without-certificates": (
        {"tls_ca_authorities": {"dask-production": []}},
        "tls_ca_authorities needs tls_ca_dir",
    ),
    "authority-without-dir": (
        {"tls_ca_dir": "", "tls_ca_certificate": CERT, **HOST, "tls_ca_authorities": {"dask-production": ["client"]}},
        "tls_ca_authorities needs tls_ca_dir",
    ),
    "relative-dir": ({"tls_ca_dir": "ca"}, "tls_ca_dir must be an absolute path on the controller, got 'ca'"),
    "not-a-certificate": (
        {"tls_ca_dir": "", "tls_ca_certificate": "hello", **HOST, **NO_AUTHORITIES},
        "tls_ca_certificate must be a PEM certificate",
    ),
    "vault-without-host-key": (
        {"tls_ca_dir": "", "tls_ca_certificate": CERT, "tls_ca_host_certificate": CERT, **NO_AUTHORITIES},
        "tls-ca-server serves TLS and the certificates come from the vault",
    ),
    "no-names": ({"tls_ca_host_names": [""]}, "tls_ca_host_names must name the host at least once"),
    "renew-after-expiry": (
        {"tls_ca_renew_days": 400},
        "Need tls_ca_valid_days >= tls_ca_host_valid_days > tls_ca_renew_days",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_invalid_input_fails_before_any_change(server, case):
    extra_vars, message = CASES[case]
    assert_rejected_without_change(server, CONVERGE, extra_vars, message, other_messages(CASES, case))
