"""A small client for Prefect 3's REST API, shared by the modules of prefect_fleet.prefect.

It uses Ansible's own URL helper (proxies, CA bundles and timeouts as every Ansible module), and
returns decoded JSON or raises PrefectAPIError with the status and Prefect's own message.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import time
from urllib.error import HTTPError, URLError
from urllib.parse import quote

from ansible.module_utils.urls import Request, make_context

# Prefect's own rule for block names (raise_on_name_alphanumeric_dashes_only).
BLOCK_NAME_PATTERN = re.compile(r"^[a-z0-9-]+$")
# Statuses Prefect's client retries too (3.8's PrefectHttpxClient.send); RETRIES attempts more,
# backing off from 0.5 s to 8 s.
TRANSIENT = (408, 429, 502, 503)
RETRIES = 5
# No answer that Prefect's client retries too (httpx's timeouts, ReadError, RemoteProtocolError): a
# busy server is slow, not gone. Only for reads here: a write that got no answer may have been done.
NO_ANSWER = (TimeoutError, ConnectionResetError, ConnectionAbortedError, BrokenPipeError)
READS = ("filter", "count", "paginate")

API_ARGUMENT_SPEC = {
    "api_url": {"type": "str", "required": True},
    "auth_string": {"type": "str", "no_log": True, "default": ""},
    "api_key": {"type": "str", "no_log": True, "default": ""},
    "validate_certs": {"type": "bool", "default": True},
    "ca_path": {"type": "path", "default": ""},
    "timeout": {"type": "int", "default": 30},
}


class PrefectAPIError(Exception):
    def __init__(self, status, message, no_answer=False):
        super().__init__(message)
        self.status = status
        self.message = message
        # True when the server took the request but did not answer in time, or dropped it.
        self.no_answer = no_answer


def path_segment(value):
    return quote(str(value), safe="")


class PrefectAPI:
    def __init__(self, module):
        params = module.params
        self.base = params["api_url"].rstrip("/")
        self.validate_certs = params["validate_certs"]
        self.timeout = params["timeout"]
        self.headers = {"Content-Type": "application/json", "Accept": "application/json"}
        # One TLS context for every request: open_url builds a new one per call, and loading the
        # system's CA store costs tens of milliseconds each time (most of a status read's time).
        # With ca_path (the fleet CA's certificate), that CA alone certifies the server.
        self.http = Request(
            context=make_context(cafile=params.get("ca_path") or None, validate_certs=self.validate_certs)
        )
        if params["auth_string"] and params.get("api_key"):
            module.fail_json(
                msg="auth_string (a self-hosted server's basic auth) and api_key (Prefect Cloud) exclude each other"
            )
        if params.get("api_key"):
            # Prefect Cloud: the API key is a bearer token, as Prefect's own client sends it.
            self.headers["Authorization"] = "Bearer " + params["api_key"]
        elif params["auth_string"]:
            token = base64.b64encode(params["auth_string"].encode("utf-8")).decode("ascii")
            self.headers["Authorization"] = "Basic " + token

    def request(self, method, path, body=None):
        """Call the API; retry what the server marks as transient, as Prefect's own client does
        (a busy SQLite answers 503 "database is locked", and its transaction was rolled back), and
        a read that got no answer."""
        read = method == "GET" or path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] in READS
        for attempt in range(RETRIES + 1):
            try:
                return self._request_once(method, path, body)
            except PrefectAPIError as error:
                again = error.status in TRANSIENT or (error.no_answer and read)
                if not again or attempt == RETRIES:
                    raise
                time.sleep(min(8.0, 0.5 * 2**attempt))
        raise AssertionError("unreachable")

    def _request_once(self, method, path, body):
        url = self.base + path
        data = json.dumps(body) if body is not None else None
        try:
            response = self.http.open(
                method,
                url,
                data=data,
                headers=self.headers,
                validate_certs=self.validate_certs,
                timeout=self.timeout,
            )
            text = response.read()
        except HTTPError as error:
            detail = error.read().decode("utf-8", "replace") if hasattr(error, "read") else ""
            with contextlib.suppress(ValueError, AttributeError):
                detail = json.loads(detail).get("detail", detail)
            raise PrefectAPIError(error.code, f"{method} {url} answered {error.code}: {detail}") from error
        except URLError as error:
            no_answer = isinstance(error.reason, NO_ANSWER)
            raise PrefectAPIError(None, f"cannot reach the Prefect API at {url}: {error.reason}", no_answer) from error
        except NO_ANSWER as error:
            # Raised while reading the answer, not wrapped in a URLError.
            raise PrefectAPIError(None, f"no answer from the Prefect API at {url}: {error!r}", True) from error
        return json.loads(text) if text else None

    def get_or_none(self, path):
        try:
            return self.request("GET", path)
        except PrefectAPIError as error:
            if error.status == 404:
                return None
            raise


def _plain(current, key):
    return current.get(key)


def converge_present(module, api, path, current, desired, create, result_key, patch_path=None, current_value=_plain):
    """Bring the object at `path` to `desired`; return the module's result (changed, diff, object).

    `current` is the object as read (None when missing). A missing object is made by `create()`; when
    another client created it meanwhile (409), it is read again and compared like an existing one.
    Fields of `desired` whose `current_value(current, key)` differs are PATCHed to
    `patch_path(current)` (default `path`).
    """
    if current is None:
        if module.check_mode:
            return {"changed": True, "diff": {"before": {}, "after": desired}, result_key: desired}
        try:
            created = create()
            return {"changed": True, "diff": {"before": {}, "after": desired}, result_key: created}
        except PrefectAPIError as error:
            if error.status != 409:
                raise
            current = api.request("GET", path)
    changes = {key: value for key, value in desired.items() if current_value(current, key) != value}
    if not changes:
        return {"changed": False, result_key: current}
    before = {key: current_value(current, key) for key in changes}
    if not module.check_mode:
        api.request("PATCH", patch_path(current) if patch_path else path, changes)
        current = api.request("GET", path)
    return {"changed": True, "diff": {"before": before, "after": changes}, result_key: current}


def ensure_present(module, api, path, current, desired, create, result_key, patch_path=None, current_value=_plain):
    """converge_present, then exit the module with its result."""
    module.exit_json(
        **converge_present(module, api, path, current, desired, create, result_key, patch_path, current_value)
    )


def ensure_absent(module, api, current, delete_path, name):
    """Delete the object when it exists, and exit the module."""
    if current is None:
        module.exit_json(changed=False)
    if not module.check_mode:
        api.request("DELETE", delete_path)
    module.exit_json(changed=True, diff={"before": {"name": name}, "after": {}})


def given_fields(params, fields):
    """API fields for the options that are set, as {option: api_field}; a concurrency limit of 0
    means no limit, which the API spells null."""
    result = {}
    for option, field in fields.items():
        if params.get(option) is not None:
            value = params[option]
            result[field] = (value or None) if option == "concurrency_limit" else value
    return result


def ensure_block_document(module, api, block_type_slug, name, data, state):
    """Make the block document `name` of type `block_type_slug` hold `data` (or not exist), and exit
    the module. The current data is read with its secrets to compare them; neither the result nor
    the diff ever holds the data (the modules' data options are no_log as well)."""
    if not BLOCK_NAME_PATTERN.match(name):
        module.fail_json(
            msg=f"the {block_type_slug.capitalize()} block name {name!r} is not valid: "
            "lower-case letters, digits and dashes only"
        )
    block_type = api.get_or_none("/block_types/slug/" + path_segment(block_type_slug))
    if block_type is None:
        module.fail_json(msg=f"the Prefect API has no {block_type_slug!r} block type (is it a Prefect 3 server?)")
    current = api.get_or_none(
        "/block_types/slug/"
        + path_segment(block_type_slug)
        + "/block_documents/name/"
        + path_segment(name)
        + "?include_secrets=true"
    )
    if state == "absent":
        if current is not None and not module.check_mode:
            api.request("DELETE", "/block_documents/" + current["id"])
        exists = current is not None
        module.exit_json(changed=exists, diff={"before": {"exists": exists}, "after": {"exists": False}})
    if current is not None and (current.get("data") or {}) == data:
        module.exit_json(changed=False, block={"name": name, "id": current["id"]})
    diff = {
        "before": {"exists": current is not None, "data": "(hidden)"},
        "after": {"exists": True, "data": "(changed)"},
    }
    if module.check_mode:
        module.exit_json(changed=True, diff=diff, block={"name": name, "id": (current or {}).get("id")})
    if current is None:
        schemas = api.request(
            "POST",
            "/block_schemas/filter",
            {"block_schemas": {"block_type_id": {"any_": [block_type["id"]]}}, "limit": 1},
        )
        if not schemas:
            module.fail_json(msg=f"the Prefect API has no schema for the {block_type_slug!r} block type")
        body = {"name": name, "block_type_id": block_type["id"], "block_schema_id": schemas[0]["id"], "data": data}
        created = api.request("POST", "/block_documents/", body)
        module.exit_json(changed=True, diff=diff, block={"name": name, "id": created["id"]})
    api.request("PATCH", "/block_documents/" + current["id"], {"data": data, "merge_existing_data": False})
    module.exit_json(changed=True, diff=diff, block={"name": name, "id": current["id"]})
