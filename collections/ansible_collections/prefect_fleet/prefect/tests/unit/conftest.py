"""Unit tests of the collection's modules with the HTTP boundary faked: a FakePrefect answers the
requests that Ansible's URL helper (its Request) would send, from routes a test gives, and records
every call."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from urllib.error import HTTPError

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.prefect_fleet.prefect.plugins.module_utils import api as api_utils

API = "http://prefect.test:4200/api"


class FakeResponse(io.BytesIO):
    pass


class FakePrefect:
    """Routes are {(METHOD, path below /api): (status, body) or a callable(body) -> (status, body),
    or a list of those answered in turn}. A request with no route answers 404."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], object] = {}
        self.calls: list[tuple[str, str, object]] = []
        self.headers: list[dict] = []

    def route(self, method: str, path: str, answer) -> None:
        self.routes[(method, path)] = answer

    def writes(self) -> list[tuple[str, str, object]]:
        return [call for call in self.calls if call[0] != "GET"]

    def open(self, method: str, url: str, data=None, headers=None, **_kwargs):
        """As ansible.module_utils.urls.Request.open."""
        assert url.startswith(API), url
        path = url[len(API) :]
        body = json.loads(data) if data else None
        self.calls.append((method, path, body))
        self.headers.append(dict(headers or {}))
        answer = self.routes.get((method, path), (404, {"detail": "Not Found"}))
        if isinstance(answer, list):
            answer = answer.pop(0) if len(answer) > 1 else answer[0]
        if callable(answer):
            answer = answer(body)
        status, payload = answer
        text = json.dumps(payload).encode() if payload is not None else b""
        if status >= 400:
            raise HTTPError(url, status, "error", {}, io.BytesIO(text))
        return FakeResponse(text)


class ModuleExit(Exception):
    def __init__(self, result: dict) -> None:
        super().__init__(result)
        self.result = result


@pytest.fixture
def prefect(monkeypatch) -> FakePrefect:
    fake = FakePrefect()
    monkeypatch.setattr(api_utils, "Request", lambda **_options: fake)
    monkeypatch.setattr(api_utils.time, "sleep", lambda _seconds: None)
    return fake


@pytest.fixture
def run_module(monkeypatch) -> Callable[..., dict]:
    """Run a module's main() with the given arguments; return its result (with `failed` on failure)."""

    def exit_json(_self, **result):
        raise ModuleExit({"failed": False, **result})

    def fail_json(_self, msg, **result):
        raise ModuleExit({"failed": True, "msg": msg, **result})

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)

    def run(module, args: dict, check_mode: bool = False, diff: bool = False, api: bool = True) -> dict:
        """`api`: the module takes the API connection (every module but converged)."""
        full = {**({"api_url": API} if api else {}), **args, "_ansible_check_mode": check_mode, "_ansible_diff": diff}
        with patch_module_args(full), pytest.raises(ModuleExit) as done:
            module.main()
        return done.value.result

    return run
