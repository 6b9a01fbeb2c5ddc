"""Fixtures of the prefect_objects molecule scenario: the server host, and its API read on the host
with the credential from the server's 0600 settings file (never on a command line)."""

from __future__ import annotations

import json
import shlex

import pytest
import testinfra

from tests.molecule_checks import journal_on_failure, scenario_host

_CLIENT = """
import base64, json, shlex, sys, urllib.request
line = next(l for l in open('/etc/prefect-server/server.env') if l.startswith('PREFECT_SERVER_API_AUTH_STRING='))
auth = shlex.split(line.split('=', 1)[1])[0]
method, path, body = sys.argv[1], sys.argv[2], sys.argv[3]
request = urllib.request.Request('http://127.0.0.1:4200/api' + path, data=body.encode() if body else None,
    method=method, headers={'Content-Type': 'application/json',
                            'Authorization': 'Basic ' + base64.b64encode(auth.encode()).decode()})
print(urllib.request.urlopen(request, timeout=20).read().decode() or 'null')
"""


@pytest.fixture(scope="module")
def server() -> testinfra.host.Host:
    return scenario_host("prefect_server")


@pytest.fixture(scope="module")
def api(server):
    """api(path) GETs, api(path, body) POSTs; returns the decoded answer."""

    def call(path: str, body: dict | None = None):
        method, data = ("GET", "") if body is None else ("POST", json.dumps(body))
        args = " ".join(shlex.quote(a) for a in (method, path, data))
        return json.loads(server.check_output(f"python3 -c {shlex.quote(_CLIENT)} {args}"))

    return call


@pytest.fixture(scope="module")
def api_state(api) -> str:
    """A command printing a hash of the API's objects as the role makes them (pools, queues,
    blocks, automations, with their update times), for the bad-input checks to compare."""
    api("/health")  # the API answers first
    script = (
        "import json, subprocess, sys\n"
        "print(json.dumps([subprocess.check_output([sys.executable, '-c', CLIENT, 'POST', p, '{}']).decode() "
        "for p in ('/work_pools/filter', '/work_pools/production/queues/filter', '/block_documents/filter', "
        "'/automations/filter')]))"
    )
    return f"python3 -c {shlex.quote('CLIENT = ' + repr(_CLIENT) + chr(10) + script)} | sha256sum"


# On a failed test, attach the journal to the report.
pytest_runtest_makereport = journal_on_failure("prefect_server", "prefect-server")
