"""certificates_due on real certificates: missing, unreadable and ending ones are due, others not."""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.prefect_fleet.prefect.plugins.lookup.certificates_due import due

NOW = datetime.datetime(2026, 12, 8, tzinfo=datetime.UTC)


def certificate(path, days):
    """A self-signed certificate at `path` that ends `days` days after NOW."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, path.stem)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(path)


def test_a_certificate_ending_within_the_days_is_due_and_a_later_one_is_not(tmp_path):
    soon = certificate(tmp_path / "soon.crt", 29)
    later = certificate(tmp_path / "later.crt", 31)
    assert due([soon, later], 30, now=NOW) == [soon]
    assert due([soon, later], 28, now=NOW) == []


def test_a_missing_or_unreadable_file_is_due(tmp_path):
    (tmp_path / "garbage.crt").write_text("not a certificate\n")
    later = certificate(tmp_path / "later.crt", 400)
    missing = str(tmp_path / "missing.crt")
    assert due([missing, str(tmp_path / "garbage.crt"), later], 30, now=NOW) == [missing, str(tmp_path / "garbage.crt")]


def test_an_expired_certificate_is_due(tmp_path):
    assert due([certificate(tmp_path / "old.crt", -1)], 1, now=NOW) == [str(tmp_path / "old.crt")]
