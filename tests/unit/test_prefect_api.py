"""lab/prefect_api.py, the tests' one API client, against a stand-in HTTP server on loopback: it
retries what Prefect's client retries, returns other errors, and reads its credential on a host
from a settings file."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lab import prefect_api


class Answers(BaseHTTPRequestHandler):
    """Answers each request with the next (status, body) of the server's script; records headers."""

    def do_GET(self):
        self.server.seen.append(dict(self.headers))
        status, body = self.server.script.pop(0) if len(self.server.script) > 1 else self.server.script[0]
        if status == "stall":  # no answer within the client's timeout (time.sleep is patched out)
            threading.Event().wait(body)
            return
        if status == "drop":  # the connection closed before any answer
            self.close_connection = True
            return
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_POST = do_GET

    def log_message(self, *_args):
        pass


@pytest.fixture
def stand_in(monkeypatch):
    monkeypatch.setattr(prefect_api.time, "sleep", lambda _seconds: None)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Answers)
    server.script, server.seen = [(200, True)], []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def url(server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/api"


def test_transient_answers_are_retried_as_prefects_client_retries_them(stand_in):
    stand_in.script = [(503, {"detail": "database is locked"}), (429, {}), (502, {}), (408, {}), (200, {"ok": 1})]
    assert prefect_api.request(url(stand_in) + "/health") == (200, b'{"ok": 1}')
    assert len(stand_in.seen) == 5


def test_other_errors_are_returned_at_once_and_transient_ones_after_the_last_attempt(stand_in):
    stand_in.script = [(404, {"detail": "Not Found"})]
    assert prefect_api.request(url(stand_in) + "/x")[0] == 404
    assert len(stand_in.seen) == 1
    stand_in.script = [(503, {})]
    assert prefect_api.request(url(stand_in) + "/x", attempts=3)[0] == 503
    assert len(stand_in.seen) == 4


def test_a_read_without_an_answer_is_asked_again_and_a_write_is_not(stand_in):
    """As Prefect's client retries a read timeout and a dropped connection; a write that got no
    answer may have been done (a run started), so it is said, not repeated."""
    stand_in.script = [("stall", 1.5), ("drop", None), (200, {"ok": 1})]
    assert prefect_api.request(url(stand_in) + "/deployments/name/f/d", timeout=0.5) == (200, b'{"ok": 1}')
    assert len(stand_in.seen) == 3
    stand_in.script = [("drop", None), (200, [])]
    assert prefect_api.request(url(stand_in) + "/flow_runs/filter", "POST", {}, timeout=0.5) == (200, b"[]")
    assert len(stand_in.seen) == 5
    stand_in.script = [("stall", 1.5), (201, {"id": "x"})]
    with pytest.raises(TimeoutError):
        prefect_api.request(url(stand_in) + "/deployments/x/create_flow_run", "POST", {}, timeout=0.5)
    assert len(stand_in.seen) == 6
    stand_in.script = [("drop", None)]
    with pytest.raises(ConnectionResetError, match="without response"):
        prefect_api.request(url(stand_in) + "/health", attempts=3, timeout=0.5)
    assert len(stand_in.seen) == 9


def test_nothing_listening_is_said_at_once():
    with pytest.raises(OSError, match="refused") as raised:
        prefect_api.request("http://127.0.0.1:9/api/health", timeout=2)
    assert not prefect_api.no_answer(raised.value)


def test_on_a_host_it_reads_url_and_credential_from_the_settings_file(stand_in, tmp_path):
    """As molecule verifiers run it: the file's source with -c, the secret only in the 0600 file."""
    settings = tmp_path / "worker.env"
    settings.write_text(f'# managed\nPREFECT_API_URL="{url(stand_in)}"\nPREFECT_API_AUTH_STRING="admin:s3cret"\n')
    source = Path(prefect_api.__file__).read_text()
    out = subprocess.run(
        [sys.executable, "-c", source, "--env-file", str(settings), "POST", "/work_pools/filter", "{}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.splitlines() == ["200", "true"]
    assert stand_in.seen[0]["Authorization"] == "Basic YWRtaW46czNjcmV0"


def test_a_cloud_key_is_a_bearer_token():
    assert prefect_api.auth_headers("admin:x", "pnu_key") == {"Authorization": "Bearer pnu_key"}
    assert prefect_api.auth_headers() == {}
