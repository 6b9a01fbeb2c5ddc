"""Each invalid input makes prefect_server fail with a message that names the problem, before any
file on the host changed. The role runs for real against the scenario's systemd container."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import testinfra

SCENARIO = Path(__file__).resolve().parent.parent
# Everything the role may write to; /var/lib/systemd changes on its own (timers, journal).
WATCHED = "/etc /opt /srv /usr/local /var/lib /home"
SNAPSHOT = (
    f"find {WATCHED} -xdev -path /var/lib/systemd -prune -o -printf '%p %T@ %s %m %u\\n' 2>/dev/null | sort | sha256sum"
)

CASES = {
    "port-out-of-range": ({"prefect_server_port": 70000}, "prefect_server_port must be between 1 and 65535"),
    "port-not-a-number": ({"prefect_server_port": "http"}, "prefect_server_port"),
    "unknown-database-backend": (
        {"prefect_server_database_backend": "mysql"},
        "prefect_server_database_backend must be one of: sqlite, postgresql",
    ),
    "postgresql-without-credentials": (
        {"prefect_server_database_backend": "postgresql"},
        "needs prefect_server_database_host and prefect_server_database_password",
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
        "every key of prefect_server_extra_env must look like PREFECT_SETTING_NAME",
    ),
    "ui-api-url-not-a-url": (
        {"prefect_server_ui_api_url": "atd-prefect-01:4200"},
        "prefect_server_ui_api_url must be an http(s) URL",
    ),
    "missing-wheelhouse-archive": (
        {"prefect_server_wheelhouse_archive": "/nonexistent/wheels.tar"},
        "must be empty or name existing files on the controller",
    ),
    "extra-env-not-a-dict": ({"prefect_server_extra_env": "PREFECT_X=1"}, "prefect_server_extra_env"),
    "extra-index-not-a-url": (
        {"prefect_server_pip_extra_index_urls": ["mirror.internal/simple"]},
        "prefect_server_pip_index_url and prefect_server_pip_extra_index_urls must be http(s) or file URLs",
    ),
}


@pytest.fixture(scope="module")
def host() -> testinfra.host.Host:
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    return testinfra.get_hosts([f"ansible://prefect_server?ansible_inventory={inventory}"])[0]


@pytest.mark.parametrize("case", sorted(CASES))
def test_invalid_input_fails_before_any_change(host, case):
    extra_vars, message = CASES[case]
    before = host.check_output(SNAPSHOT)
    result = subprocess.run(
        [
            "ansible-playbook",
            "-i",
            os.environ["MOLECULE_INVENTORY_FILE"],
            str(SCENARIO / "converge.yml"),
            "-e",
            json.dumps(extra_vars),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default"},
    )
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, f"{case}: the role accepted invalid input\n{result.stdout[-3000:]}"
    assert message in output, f"{case}: expected {message!r} in the failure\n{result.stdout[-3000:]}"
    # Nothing was written: the role failed in its argument spec or preflight checks.
    assert "changed=0" in output
    assert host.check_output(SNAPSHOT) == before
    assert not host.user("prefect").exists
    assert not host.file("/etc/systemd/system/prefect-server.service").exists
