"""End to end on the lab: a production flow run that fails or crashes calls the webhook of the
inventory's notification (a Prefect automation with a call-webhook action, both made by the
converge), with the token header from the vault; a staging one does not. The receiver is a small
HTTP server on a lab host (the git remote's), as a chat's or a pager's webhook would be."""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

import pytest

from lab.flowruns import start, wait

pytestmark = pytest.mark.lab

PORT = 9099
# Appends each request it receives as a JSON line: path, the token header, the body.
RECEIVER = r"""
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        with open(sys.argv[2], "a") as out:
            out.write(json.dumps({"path": self.path, "token": self.headers.get("X-Fleet-Token"), "body": body}) + "\n")
        self.send_response(204)
        self.end_headers()
    def log_message(self, *args):
        pass
HTTPServer(("0.0.0.0", int(sys.argv[1])), Hook).serve_forever()
"""


@pytest.fixture
def receiver(lab):
    host = lab.groups["lab_git_remote"][0]
    out = "/var/tmp/prefect-webhooks.jsonl"
    lab.ssh(host, f"rm -f {out}; systemctl stop lab-webhook-receiver 2>/dev/null; true")
    lab.ssh(
        host,
        f"systemd-run --unit lab-webhook-receiver --collect python3 -c {shlex.quote(RECEIVER)} {PORT} {out}",
    )

    def received() -> list[dict]:
        text = lab.ssh(host, f"cat {out} 2>/dev/null || true").stdout
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    try:
        yield received
    finally:
        # What it received holds the token: it goes (tests/lab/test_secrets.py searches every file).
        lab.ssh(host, f"systemctl stop lab-webhook-receiver; rm -f {out}", check=False)


def test_a_failed_production_run_calls_the_webhook_and_a_failed_staging_one_does_not(lab, receiver):
    api = lab.api
    token = (Path(lab.server["lab_state_dir"]) / "secrets" / "webhook-token").read_text().strip()
    # A run that fails: the example flow sleeps `seconds`, and a negative time raises (after the
    # flow's one retry, the run is Failed). A crash would do too, but a run whose process cannot
    # start is scheduled again by the fleet's retry automation, again and again.
    runs = [
        start(api, "fleet-report", f"fleet-report-{env}-atd-data02", env, "atd-data02", {"seconds": -1})
        for env in ("production", "staging")
    ]
    wait(api, runs, timeout=180)
    assert [run.state for run in runs] == ["FAILED", "FAILED"], runs
    production, staging = runs
    deadline = time.monotonic() + 60  # an automation fires within seconds; a minute is an outage
    calls: list[dict] = []
    while time.monotonic() < deadline:
        calls = [c for c in receiver() if production.id in c["body"]]
        if calls:
            break
        time.sleep(1)
    assert calls, f"no webhook call for production run {production.id}: {receiver()}"
    call = calls[0]
    assert call["path"] == "/prefect"
    assert call["token"] == token, "the token header from the vault reached the receiver"
    body = json.loads(call["body"])
    assert (body["flow_run_id"], body["state"], body["environments"]) == (production.id, "Failed", ["production"])
    assert body["automation"] == "fleet: notify lab-receiver"
    # The staging run failed at the same time: give its notification, were there one, time too.
    time.sleep(10)
    assert not [c for c in receiver() if staging.id in c["body"]], "a staging run must not notify"
