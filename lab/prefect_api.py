"""The one client of the Prefect API that tests and benchmarks use, on the controller and on hosts.

It retries what Prefect's own client (3.8's PrefectHttpxClient.send) retries, with backoff: the
statuses 408, 429, 502 and 503 (a SQLite "database is locked" is a 503, and its transaction was
rolled back), and, for a read, no answer in time or a connection the server dropped (a server
starved of CPU, as tests/inventory's fleet is in `make test`, is slow, not failed). A write that
got no answer is not sent again, unlike in Prefect's client: it may have been done, and a test must
know how many runs it started. Standard library only, so that molecule verifiers can run this very
file on a host (`host_api` in tests/molecule_checks.py):

    python3 -c "<this file>" --env-file /etc/prefect-worker/production.env GET /work_pools/production

The credential is then read on the host from its own 0600 settings file, never put on a command
line, and the CA that certifies the API from its PREFECT_API_SSL_CERT_FILE (or --ca-file). It
prints the status on one line and the body after it.
"""

from __future__ import annotations

import argparse
import base64
import json
import shlex
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

# Statuses Prefect's client retries (prefect.client.base: 408, 429, 502, 503).
TRANSIENT = (408, 429, 502, 503)
ATTEMPTS = 6
# No answer that Prefect's client retries too (httpx's ReadTimeout, ConnectTimeout, ReadError,
# RemoteProtocolError): a timeout, or a connection reset or closed before the answer. Not a refused
# connection: nothing listens there, and that is said at once.
NO_ANSWER = (TimeoutError, ConnectionResetError, ConnectionAbortedError, BrokenPipeError)


def is_read(method: str, url: str) -> bool:
    """A request that changes nothing, so that sending it twice is harmless: GET, and the API's
    POST queries (…/filter, …/count, …/paginate)."""
    last = urllib.parse.urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
    return method == "GET" or last in ("filter", "count", "paginate")


def no_answer(error: OSError) -> bool:
    """Whether `error` (raised by urlopen or by reading its answer) is one of NO_ANSWER."""
    reason = error.reason if isinstance(error, urllib.error.URLError) else error
    return isinstance(reason, NO_ANSWER)


def tls_context(ca_file: str = "") -> ssl.SSLContext | None:
    """A context that trusts ca_file alone (the fleet CA's certificate), as the fleet's clients do;
    None (the system's CAs) without one."""
    return ssl.create_default_context(cafile=ca_file) if ca_file else None


def request(
    url: str,
    method: str = "GET",
    body=None,
    headers: dict | None = None,
    timeout: float = 30,
    attempts: int = ATTEMPTS,
    ca_file: str = "",
) -> tuple[int, bytes]:
    """(status, body) of `method url`, after retrying transient answers (and, for a read, missing
    ones); an answer of any other status is returned, not raised. No answer at all, after the last
    attempt for a read, raises OSError. An https URL is verified against ca_file when given."""
    data = json.dumps(body).encode() if body is not None else None
    context = tls_context(ca_file)
    for attempt in range(attempts):
        req = urllib.request.Request(
            url, method=method, data=data, headers={"Content-Type": "application/json", **(headers or {})}
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=context) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            if error.code not in TRANSIENT or attempt == attempts - 1:
                return error.code, error.read()
        except OSError as error:
            if not (no_answer(error) and is_read(method, url)) or attempt == attempts - 1:
                raise
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
    parser.add_argument(
        "--ca-file", help="the CA that certifies the API (default: PREFECT_API_SSL_CERT_FILE of --env-file)"
    )
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
        url.rstrip("/") + args.path,
        args.method,
        json.loads(args.body) if args.body else None,
        headers,
        ca_file=args.ca_file or settings.get("PREFECT_API_SSL_CERT_FILE", ""),
    )
    sys.stdout.write(f"{status}\n{body.decode()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
