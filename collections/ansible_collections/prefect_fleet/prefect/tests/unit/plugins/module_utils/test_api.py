"""The shared API client: auth header, retries of transient answers, clear errors."""

from __future__ import annotations

import base64
from urllib.error import URLError

import pytest

from ansible_collections.prefect_fleet.prefect.plugins.modules import work_queue

ARGS = {"pool": "production", "name": "atd-data02"}


def test_basic_auth_is_sent_when_set(prefect, run_module):
    prefect.route("GET", "/work_pools/production", (200, {"name": "production"}))
    prefect.route("GET", "/work_pools/production/queues/atd-data02", (200, {"name": "atd-data02"}))
    run_module(work_queue, {**ARGS, "auth_string": "fleet:s3cret"})
    expected = "Basic " + base64.b64encode(b"fleet:s3cret").decode()
    assert {h.get("Authorization") for h in prefect.headers} == {expected}


def test_no_auth_header_without_an_auth_string(prefect, run_module):
    prefect.route("GET", "/work_pools/production", (200, {"name": "production"}))
    prefect.route("GET", "/work_pools/production/queues/atd-data02", (200, {"name": "atd-data02"}))
    run_module(work_queue, ARGS)
    assert all("Authorization" not in h for h in prefect.headers)


def test_transient_answers_are_retried(prefect, run_module):
    prefect.route(
        "GET", "/work_pools/production", [(503, {"detail": "busy"}), (429, {}), (200, {"name": "production"})]
    )
    prefect.route("GET", "/work_pools/production/queues/atd-data02", (200, {"name": "atd-data02"}))
    assert run_module(work_queue, ARGS)["failed"] is False
    assert [c[1] for c in prefect.calls].count("/work_pools/production") == 3


def test_retries_end_with_the_servers_message(prefect, run_module):
    prefect.route("GET", "/work_pools/production", (503, {"detail": "database is locked"}))
    result = run_module(work_queue, ARGS)
    assert result["failed"] is True
    assert "answered 503: database is locked" in result["msg"]
    assert len(prefect.calls) == 6, "one call and five retries"


def test_a_refused_auth_is_not_retried(prefect, run_module):
    prefect.route("GET", "/work_pools/production", (401, {"detail": "Unauthorized"}))
    result = run_module(work_queue, {**ARGS, "auth_string": "fleet:wrong"})
    assert "answered 401: Unauthorized" in result["msg"]
    assert len(prefect.calls) == 1
    assert "wrong" not in result["msg"]


def test_an_unreachable_api_is_named(monkeypatch, run_module):
    from ansible_collections.prefect_fleet.prefect.plugins.module_utils import api

    class Refusing:
        def open(self, *_args, **_kwargs):
            raise URLError("Connection refused")

    monkeypatch.setattr(api, "Request", lambda **_options: Refusing())
    result = run_module(work_queue, ARGS)
    assert result["failed"] is True
    assert "cannot reach the Prefect API at http://prefect.test:4200/api/work_pools/production" in result["msg"]


class Silent:
    """Takes each request and answers none in time, as a server starved of CPU does."""

    def __init__(self, answers):
        self.answers, self.calls = answers, []

    def open(self, method, url, **_options):
        self.calls.append((method, url))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer


class Answer:
    def __init__(self, text):
        self.text = text

    def read(self):
        return self.text


def test_a_read_without_an_answer_is_asked_again_as_prefects_client_does(monkeypatch):
    from ansible_collections.prefect_fleet.prefect.plugins.module_utils import api

    monkeypatch.setattr(api.time, "sleep", lambda _seconds: None)
    silent = Silent([TimeoutError("timed out"), URLError(ConnectionResetError()), Answer(b'{"name": "production"}')])
    monkeypatch.setattr(api, "Request", lambda **_options: silent)
    module = type("Module", (), {"params": {**api_params(), "timeout": 1}, "fail_json": None})()
    assert api.PrefectAPI(module).request("GET", "/work_pools/production") == {"name": "production"}
    assert len(silent.calls) == 3
    silent.answers = [TimeoutError("timed out"), Answer(b"[]")]
    assert api.PrefectAPI(module).request("POST", "/flow_runs/filter", {}) == []
    assert len(silent.calls) == 5


def test_a_write_without_an_answer_is_said_not_repeated(monkeypatch):
    # It may have been done: creating it again could make two of it.
    silent = Silent([TimeoutError("timed out")])
    from ansible_collections.prefect_fleet.prefect.plugins.module_utils import api

    monkeypatch.setattr(api, "Request", lambda **_options: silent)
    module = type("Module", (), {"params": api_params(), "fail_json": None})()
    with pytest.raises(
        api.PrefectAPIError, match=r"no answer from the Prefect API at http://prefect\.test:4200/api/work_pools/"
    ) as raised:
        api.PrefectAPI(module).request("POST", "/work_pools/", {"name": "production"})
    assert raised.value.no_answer
    assert len(silent.calls) == 1


def api_params():
    return {
        "api_url": "http://prefect.test:4200/api",
        "auth_string": "",
        "api_key": "",
        "validate_certs": True,
        "timeout": 30,
    }


def test_every_request_of_a_module_shares_one_tls_context(prefect, run_module, monkeypatch):
    # Loading the CA store costs tens of milliseconds: once per module run, not once per request.
    from ansible_collections.prefect_fleet.prefect.plugins.module_utils import api

    contexts = []
    monkeypatch.setattr(api, "make_context", lambda **options: contexts.append(options) or object())
    prefect.route("GET", "/work_pools/production", (200, {"name": "production"}))
    prefect.route("GET", "/work_pools/production/queues/atd-data02", (200, {"name": "atd-data02"}))
    run_module(work_queue, ARGS)
    assert len(prefect.calls) >= 2
    assert contexts == [{"cafile": None, "validate_certs": True}]


def test_a_ca_path_is_the_one_ca_the_modules_trust(prefect, run_module, monkeypatch):
    from ansible_collections.prefect_fleet.prefect.plugins.module_utils import api

    contexts = []
    monkeypatch.setattr(api, "make_context", lambda **options: contexts.append(options) or object())
    prefect.route("GET", "/work_pools/production", (200, {"name": "production"}))
    prefect.route("GET", "/work_pools/production/queues/atd-data02", (200, {"name": "atd-data02"}))
    run_module(work_queue, {**ARGS, "ca_path": "/etc/prefect-fleet/tls/ca.crt"})
    assert contexts == [{"cafile": "/etc/prefect-fleet/tls/ca.crt", "validate_certs": True}]
