"""An index's credential reaches the installers through a netrc file named by NETRC, never a URL.

The roles give the hosts' pip and uv (and the Dask image's build) `NETRC=<a 0600 file>` and the
index URL without a credential (the preflight refuses one inside it). This runs the pinned uv and
pip of the controller's venv (the hosts' pins are the same: test_pins.py) against a package index
on loopback that answers 401 without Basic auth, so it fails if either stops reading NETRC.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import os
import shutil
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

USER, SECRET = "fleet-ci", "an-index-secret-0123456789"


def _wheel(directory: Path) -> Path:
    """A minimal pure-Python wheel, fleet_probe 1.0."""
    path = directory / "fleet_probe-1.0-py3-none-any.whl"
    files = {
        "fleet_probe.py": "VALUE = 1\n",
        "fleet_probe-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: fleet-probe\nVersion: 1.0\n",
        "fleet_probe-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    lines = []
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in files.items():
            wheel.writestr(name, text)
            digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
            lines.append(f"{name},sha256={digest},{len(text.encode())}")
        wheel.writestr(
            "fleet_probe-1.0.dist-info/RECORD", "\n".join([*lines, "fleet_probe-1.0.dist-info/RECORD,,"]) + "\n"
        )
    return path


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    """A PEP 503 index on 127.0.0.1 that serves fleet-probe to Basic auth USER:SECRET only."""
    root = tmp_path_factory.mktemp("index")
    wheel = _wheel(root)
    expected = "Basic " + base64.b64encode(f"{USER}:{SECRET}".encode()).decode()
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *_args):
            pass

        def do_HEAD(self):
            self.do_GET(body=False)

        def do_GET(self, body=True):
            seen.append(self.headers.get("Authorization") or "")
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="index"')
                self.end_headers()
                return
            if self.path.rstrip("/") in ("/simple/fleet-probe", "/simple/fleet_probe"):
                content = f'<a href="/files/{wheel.name}">{wheel.name}</a>'.encode()
                kind = "text/html"
            elif self.path == f"/files/{wheel.name}":
                content, kind = wheel.read_bytes(), "application/octet-stream"
            else:
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            if body:
                self.wfile.write(content)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/simple", seen
    server.shutdown()


def _netrc(tmp_path: Path) -> Path:
    path = tmp_path / "netrc"
    path.write_text(f"machine 127.0.0.1 login {USER} password {SECRET}\n")
    path.chmod(0o600)
    return path


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "PIP_")) and k != "NETRC"}
    env["HOME"] = "/nonexistent"  # no ~/.netrc of whoever runs the tests
    return {**env, "UV_NO_CONFIG": "1", "UV_NO_CACHE": "1", "UV_PYTHON_DOWNLOADS": "never", **extra}


def _uv() -> str:
    uv = shutil.which("uv", path=str(Path(sys.executable).parent))
    assert uv, "uv is pinned in requirements.txt: make venv"
    return uv


@pytest.mark.parametrize("with_netrc", [True, False], ids=["netrc", "no-netrc"])
def test_uv_installs_from_an_index_with_its_credential_from_netrc_only(index, tmp_path, with_netrc):
    url, seen = index
    extra = {"UV_INDEX_URL": url, **({"NETRC": str(_netrc(tmp_path))} if with_netrc else {})}
    target = tmp_path / "site"
    result = subprocess.run(
        [_uv(), "pip", "install", "--python", sys.executable, "--target", str(target), "fleet-probe==1.0"],
        env=_env(**extra),
        capture_output=True,
        text=True,
        check=False,
    )
    if with_netrc:
        assert result.returncode == 0, result.stderr
        assert (target / "fleet_probe.py").exists()
    else:
        assert result.returncode != 0
        assert not (target / "fleet_probe.py").exists()
    assert SECRET not in result.stdout + result.stderr
    assert seen, "the index was never asked"


def test_pip_installs_from_an_index_with_its_credential_from_netrc(index, tmp_path):
    url, _seen = index
    target = tmp_path / "site"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--target",
            str(target),
            "--index-url",
            url,
            "fleet-probe==1.0",
        ],
        env=_env(NETRC=str(_netrc(tmp_path))),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (target / "fleet_probe.py").exists()
    assert SECRET not in result.stdout + result.stderr
