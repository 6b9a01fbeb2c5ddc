"""Nothing in clear on the wire, nothing open by default (docs/network.md): the Prefect API answers
HTTPS only, certified by the fleet's CA alone; the server processes listen on loopback; a packet
capture on the server host and on a worker host while a flow runs finds no credential in clear (and
does find a marker sent in clear on purpose, so it would have seen one); and no lab host listens on
every interface but for what the docs list."""

from __future__ import annotations

import base64
import json
import re
import secrets as random
import shlex
import subprocess
import time

import pytest

from lab.ansible import playbook
from lab.fleet import SSH_OPTIONS
from lab.flowruns import describe, start, wait
from lab.inventory import ROOT

pytestmark = pytest.mark.lab

# Run on a worker host: the API at its URL with the fleet CA's certificate, with the system's CAs
# only, and in plain HTTP at the same address and port.
PROBE = r"""
import json, ssl, sys, urllib.error, urllib.request
url, ca = sys.argv[1], sys.argv[2]
def attempt(url, context):
    try:
        with urllib.request.urlopen(url, timeout=10, context=context) as answer:
            return "answered %d" % answer.status
    except urllib.error.HTTPError as error:
        return "answered %d" % error.code
    except Exception as error:
        reason = getattr(error, "reason", error)
        return "failed: %s" % type(reason if isinstance(reason, BaseException) else error).__name__
print(json.dumps({
    "https, the fleet CA": attempt(url, ssl.create_default_context(cafile=ca)),
    "https, the system's CAs": attempt(url, ssl.create_default_context()),
    "plain http": attempt(url.replace("https://", "http://", 1), None),
}))
"""

# Run as root on a lab host until its stop file exists (at most `seconds`): every TCP segment on every interface but loopback (a
# host's own loopback never leaves it), each connection's bytes searched for every needle (given on
# stdin, never on a command line), the last bytes of the previous segment kept so that a needle
# split between two segments is found too. Prints what it saw and which needles it found where.
CAPTURE = r"""
import json, os, socket, struct, sys, time
given = json.load(sys.stdin)
needles = {name: value.encode() for name, value in given["needles"].items()}
folded = {name: value.lower() for name, value in needles.items() if name in given["case_insensitive"]}
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(3))
s.settimeout(0.5)
end = time.time() + given["seconds"]
seen = {"segments": 0, "bytes": 0, "api_segments": 0}
found, tails = {}, {}
checked = 0
while time.time() < end:
    if time.time() - checked > 0.5:
        checked = time.time()
        if os.path.exists(given["stop_file"]):
            break
    try:
        frame, where = s.recvfrom(262144)
    except socket.timeout:
        continue
    if where[0] == "lo" or frame[12:14] != b"\x08\x00" or frame[23] != 6:
        continue
    ihl = (frame[14] & 0x0F) * 4
    total = struct.unpack("!H", frame[16:18])[0]
    tcp = 14 + ihl
    ports = struct.unpack("!HH", frame[tcp:tcp + 4])
    payload = frame[tcp + (frame[tcp + 12] >> 4) * 4:14 + total]
    if not payload:
        continue
    seen["segments"] += 1
    seen["bytes"] += len(payload)
    if given["api_port"] in ports:
        seen["api_segments"] += 1
    flow = (frame[26:30], frame[30:34], ports)
    data = tails.get(flow, b"") + payload
    tails[flow] = data[-256:]
    for name, value in needles.items():
        hit = (folded[name] in data.lower()) if name in folded else (value in data)
        if hit:
            found.setdefault(name, set()).add("%s:%d -> %s:%d" % (
                socket.inet_ntoa(frame[26:30]), ports[0], socket.inet_ntoa(frame[30:34]), ports[1]))
print(json.dumps({"seen": seen, "found": {name: sorted(where) for name, where in found.items()}}))
"""


def _ssh_command(lab, host: str, command: str) -> list[str]:
    return ["ssh", "-i", lab.key, *SSH_OPTIONS, f"root@{lab.addresses[host]}", command]


def test_the_api_answers_https_certified_by_the_fleet_ca_and_nothing_else(lab):
    worker = lab.groups["prefect_workers"][0]
    url = lab.api_url + "/health"
    assert url.startswith("https://")
    answers = json.loads(
        lab.ssh(worker, f"python3 -c {shlex.quote(PROBE)} {shlex.quote(url)} /etc/prefect-fleet/tls/ca.crt").stdout
    )
    assert answers["https, the fleet CA"] == "answered 200", answers
    assert answers["https, the system's CAs"] == "failed: SSLCertVerificationError", answers
    assert answers["plain http"].startswith("failed: "), answers


def test_the_server_processes_listen_on_loopback_and_its_tls_front_on_the_fleets_address(lab):
    server = lab.groups["prefect_server"][0]
    port = lab.api_url.rsplit(":", 1)[1].split("/", 1)[0]
    listening = {line.split()[3] for line in lab.ssh(server, "ss -ltnH").stdout.splitlines()}
    on_port = sorted(address for address in listening if address.endswith(f":{port}"))
    assert on_port == sorted([f"127.0.0.1:{port}", f"{lab.addresses[server]}:{port}"]), listening
    # On loopback the Prefect server itself, in plain HTTP; on the host's address its TLS front.
    probe = (
        "import ssl, sys, urllib.request; ctx = ssl.create_default_context(cafile='/etc/prefect-fleet/tls/ca.crt'); "
        "print(urllib.request.urlopen(sys.argv[1], timeout=10, context=ctx).status)"
    )
    for url in (f"http://127.0.0.1:{port}/api/health", f"https://{lab.addresses[server]}:{port}/api/health"):
        assert lab.ssh(server, f"python3 -c {shlex.quote(probe)} {url}").stdout.strip() == "200", url
    assert lab.ssh(server, "systemctl is-active haproxy.service prefect-server.service").stdout.split() == [
        "active",
        "active",
    ]


def test_the_database_admits_the_servers_over_tls_only_and_they_use_it(lab):
    """pg_hba admits each tier's role from the network over TLS only (hostssl), and every connection
    the servers hold is encrypted (the refusal of a clear one: the postgresql scenario of molecule)."""
    database = lab.groups["prefect_database"][0]

    def sql(query: str) -> list[list[str]]:
        out = lab.ssh(database, f"cd / && runuser -u postgres -- psql -tA -F '|' -c {shlex.quote(query)}").stdout
        return [line.split("|") for line in out.splitlines() if line]

    rules = sql("select type, array_to_string(database, ','), address from pg_hba_file_rules where type <> 'local'")
    network = [r for r in rules if r[2] not in ("127.0.0.1", "::1")]
    assert network, rules
    assert {r[0] for r in network} == {"hostssl"}, rules
    held = sql(
        "select s.ssl, s.version, count(*) from pg_stat_activity a join pg_stat_ssl s using (pid) "
        "where a.usename = 'prefect' group by 1, 2"
    )
    assert len(held) == 1, held
    assert held[0][0] == "t", held
    assert held[0][1] in ("TLSv1.2", "TLSv1.3"), held


def test_a_capture_during_a_flow_run_finds_no_credential_in_clear(lab):
    """On the server host (every client's API traffic arrives there) and on the worker host that
    runs the flow (the worker's polls, the run's own calls and its Dask tasks leave there)."""
    api = lab.api
    server, worker = lab.groups["prefect_server"][0], "atd-data02"
    auth = lab.server["prefect_server_auth_string"]
    control = f"fleet-capture-control-{random.token_hex(8)}"
    needles = {
        "an Authorization: Basic header": "authorization: basic",
        "the credential, base64 as in that header": base64.b64encode(auth.encode()).decode(),
        "the API's password": auth.split(":", 1)[1],
        "the control marker": control,
    }
    stop_file = f"/tmp/capture-stop-{random.token_hex(4)}"
    given = json.dumps(
        {
            "seconds": 600,
            "stop_file": stop_file,
            "needles": needles,
            "case_insensitive": ["an Authorization: Basic header"],
            "api_port": 4200,
        }
    )
    captures = {
        host: subprocess.Popen(
            _ssh_command(lab, host, f"python3 -c {shlex.quote(CAPTURE)}"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for host in (server, worker)
    }
    for capture in captures.values():
        capture.stdin.write(given)
        capture.stdin.close()
    time.sleep(3)
    # The control: a plain-HTTP request with the marker in a header, from the worker host to the
    # server's API port (its TLS front refuses it, after the bytes crossed the network).
    control_request = (
        "import socket, sys; s = socket.create_connection((sys.argv[1], 4200), timeout=5); "
        "s.sendall(('GET / HTTP/1.1\\r\\nHost: x\\r\\nX-Control: ' + sys.argv[2] + '\\r\\n\\r\\n').encode()); "
        "s.recv(100)"
    )
    lab.ssh(worker, f"python3 -c {shlex.quote(control_request)} {lab.addresses[server]} {control}", check=False)
    # The mapping flow: the worker's polls, the run's own API calls, and its tasks sent to the
    # production Dask cluster with the run's settings (the API's credential among them).
    run = start(api, "dask-mapping", "dask-mapping-production-atd-data02", "production", "atd-data02")
    try:
        (ran,) = wait(api, [run], timeout=300)
    finally:
        for host in captures:
            lab.ssh(host, f"touch {stop_file}")
    assert ran.state == "COMPLETED", describe(lab, ran)
    reports = {}
    for host, capture in captures.items():
        lab.ssh(host, f"rm -f {stop_file}")
        out, err = capture.stdout.read(), capture.stderr.read()  # its stdin is closed: not communicate()
        assert capture.wait(timeout=120) == 0, f"{host}: {err[-2000:]}"
        reports[host] = json.loads(out)
    for host, report in reports.items():
        assert report["seen"]["api_segments"] > 20, f"{host}: the capture saw too little of the API: {report['seen']}"
        found = report["found"]
        assert "the control marker" in found, f"{host}: the capture did not see the marker sent in clear: {report}"
        leaked = {name: where for name, where in found.items() if name != "the control marker"}
        assert leaked == {}, f"{host}: in clear on the wire: {leaked}"


# What may listen on every interface of a lab host, and why (docs/network.md has the same list).
WILDCARD_ALLOWED = {22: "sshd: Ansible and operators reach every host by SSH"}


def test_no_lab_host_listens_on_every_interface_but_for_what_the_docs_list(lab):
    doc = (ROOT / "docs" / "network.md").read_text()
    for port, why in WILDCARD_ALLOWED.items():
        assert f"| {port} " in doc, f"docs/network.md does not list port {port} ({why})"
    wide = {}
    for host in lab.hosts:
        for line in lab.ssh(host, "ss -ltnH").stdout.splitlines():
            address = line.split()[3]
            host_part, _, port = address.rpartition(":")
            if host_part in ("0.0.0.0", "[::]", "*") and int(port) not in WILDCARD_ALLOWED:
                wide.setdefault(host, []).append(address)
    assert wide == {}, f"listening on every interface: {wide}"


# Run on a worker host: the serial number of the certificate the API's address serves, verified
# against the fleet CA.
SERIAL = (
    "import socket, ssl, sys; ctx = ssl.create_default_context(cafile='/etc/prefect-fleet/tls/ca.crt'); "
    "s = ctx.wrap_socket(socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10), "
    "server_hostname=sys.argv[1]); print(s.getpeercert()['serialNumber'])"
)


def test_rotating_the_servers_certificate_needs_nothing_of_the_clients(lab):
    """docs/network.md's rotation: a new key and certificate from the same CA on the server host,
    HAProxy reloaded by the converge; the workers go on, and a run started after it completes."""
    server, worker = lab.groups["prefect_server"][0], "atd-data02"
    address, port = lab.addresses[server], lab.api_url.rsplit(":", 1)[1].split("/", 1)[0]

    def serial() -> str:
        return lab.ssh(worker, f"python3 -c {shlex.quote(SERIAL)} {address} {port}").stdout.strip()

    before = serial()
    for step in (("playbooks/tls.yml", "-e", "fleet_tls_rotate=true"), ("playbooks/load_balancer.yml",)):
        result = playbook(lab.inventory, step[0], "--limit", server, *step[1:], timeout=600)
        assert result.returncode == 0, result.stdout[-3000:]
    after = serial()
    assert after != before, "the server serves a new certificate"
    again = playbook(lab.inventory, "playbooks/tls.yml", "--limit", server, timeout=600)
    assert again.returncode == 0, again.stdout[-3000:]
    assert re.search(rf"{server}\s*: ok=\d+\s+changed=0 ", again.stdout), "without rotation, nothing changes"
    api = lab.api
    run = start(api, "fleet-report", "fleet-report-production-atd-data02", "production", "atd-data02")
    (ran,) = wait(api, [run], timeout=300)
    assert ran.state == "COMPLETED", describe(lab, ran)


# Run as root on a worker host with an environment's venv: production's scheduler, approached
# with production's CA (public, as an attacker may know it) and no certificate, with staging's
# certificate, in plain TCP, and with production's own certificate (the control).
DASK_PROBE = r"""
import json, socket, ssl, sys
from urllib.parse import urlsplit
from distributed import Client
from distributed.security import Security
address, ca, own, other = sys.argv[1:5]
host, port = urlsplit(address).hostname, urlsplit(address).port
def without_certificate():
    # Dask's own client will not even try without one: a TLS handshake that trusts the CA.
    context = ssl.create_default_context(cafile=ca)
    context.check_hostname = False
    try:
        with socket.create_connection((host, port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname=host) as tls:
                tls.sendall(b"hello")
                data = tls.recv(100)
                return "answered %r" % data if data else "closed"
    except Exception as error:
        return "refused: %s" % type(error).__name__
def client(url, security):
    try:
        with Client(url, security=security, timeout=15) as c:
            return "connected: %d workers" % len(c.scheduler_info()["workers"])
    except Exception as error:
        return "refused: %s" % type(error).__name__
def tls(cert):
    return Security(tls_ca_file=ca, tls_client_cert=cert, require_encryption=True)
print(json.dumps({
    "no certificate": without_certificate(),
    "plain TCP": client(address.replace("tls://", "tcp://", 1), Security()),
    "staging's certificate": client(address, tls(other)),
    "production's certificate": client(address, tls(own)),
}))
"""


def test_a_dask_scheduler_refuses_any_client_without_its_environments_certificate(lab):
    """Each cluster trusts its own CA alone (docs/dask.md): production's scheduler, reached from a
    worker host, refuses a TLS client with no certificate, a plain TCP one and staging's client
    certificate, and accepts production's."""
    worker = lab.groups["prefect_workers"][0]
    address = lab.server["fleet_dask_scheduler_addresses"]["production"]
    assert address.startswith("tls://")
    config = "/etc/prefect-worker"
    args = [address, f"{config}/production.dask-ca.crt", f"{config}/production.dask.pem", f"{config}/staging.dask.pem"]
    answers = json.loads(
        lab.ssh(
            worker,
            f"/opt/prefect/production/venv/bin/python -c {shlex.quote(DASK_PROBE)} " + " ".join(map(shlex.quote, args)),
        ).stdout
    )
    assert answers["production's certificate"].startswith("connected: "), answers
    assert answers["production's certificate"] != "connected: 0 workers", answers
    for attempt in ("no certificate", "plain TCP", "staging's certificate"):
        assert answers[attempt].startswith(("refused: ", "closed")), answers
