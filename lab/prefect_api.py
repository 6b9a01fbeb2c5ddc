"""The one client of the Prefect API that tests and benchmarks use, on the controller and on hosts.

It retries what Prefect's own client retries (429, 502 and 503, with backoff): a busy server's
transient answer (a SQLite "database is locked" is a 503, and its transaction was rolled back) is
not a failed test. Standard library only, so that molecule verifiers can run this very file on a
host (`host_api` in tests/molecule_checks.py):

    python3 -c "<this file>" --env-file /etc/prefect-worker/production.env GET /work_pools/production

The credential is then read on the host from its own 0600 settings file, never put on a command
line. It prints the status on one line and the body after it.
"""

from __future__ import annotations

import argparse
import base64
import json
import shlex
import sys
import time
import urllib.error
import urllib.request

# Statuses Prefect's client retries (prefect.client.base: 429, 502, 503).
TRANSIENT = (429, 502, 503)
ATTEMPTS = 6


def request(
    url: str, method: str = "GET", body=None, headers: dict | None = None, timeout: float = 30, attempts: int = ATTEMPTS
) -> tuple[int, bytes]:
    """(status, body) of `method url`, after retrying transient answers; an answer of any other
    status is returned, not raised. No answer at all raises OSError."""
    data = json.dumps(body).encode() if body is not None else None
    for attempt in range(attempts):
        req = urllib.request.Request(
            url, method=method, data=data, headers={"Content-Type": "application/json", **(headers or {})}
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            if error.code not in TRANSIENT or attempt == attempts - 1:
                return error.code, error.read()
        time.sleep(min(8.0, 0.5 * 2**attempt))
    raise AssertionError("unreachable")


def auth_headers(auth_string: str = "", api_key: str = "") -> dict[str, str]:
    """A server's basic auth, or a Prefect Cloud API key as a bearer token."""
    if api_key:
        return {"Authorization": "Bearer " + api_key}
    if auth_string:
        return {"Authorization": "Basic " + base64.b64encode(auth_string.encode()).decode()}
    return {}


def read_env_file(path: str) -> dict[str, str]:
    """KEY="value" lines of a systemd environment file, as the roles write them."""
    settings = {}
    with open(path) as handle:
        for line in handle:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, _, value = line.partition("=")
                words = shlex.split(value)
                settings[key] = words[0] if words else ""
    return settings


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Call the Prefect API; print the status, then the body.")
    parser.add_argument("--env-file", help="settings file holding PREFECT_API_URL and the credential")
    parser.add_argument("--url", help="the API's URL (default: PREFECT_API_URL of --env-file)")
    parser.add_argument("method")
    parser.add_argument("path")
    parser.add_argument("body", nargs="?")
    args = parser.parse_args(argv)
    settings = read_env_file(args.env_file) if args.env_file else {}
    url = args.url or settings["PREFECT_API_URL"]
    headers = auth_headers(
        settings.get("PREFECT_API_AUTH_STRING") or settings.get("PREFECT_SERVER_API_AUTH_STRING", ""),
        settings.get("PREFECT_API_KEY", ""),
    )
    status, body = request(
        url.rstrip("/") + args.path, args.method, json.loads(args.body) if args.body else None, headers
    )
    sys.stdout.write(f"{status}\n{body.decode()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
