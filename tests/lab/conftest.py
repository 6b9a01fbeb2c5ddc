"""Fixtures of the end-to-end tests, which run against the lab fleet that `make lab` brought up."""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from base64 import b64encode
from dataclasses import dataclass

import pytest

from tests.conftest import ROOT, VENV_BIN, run


@dataclass(frozen=True)
class Lab:
    inventory: str
    groups: dict
    server: dict  # the server host's variables, as Ansible resolves them

    @property
    def api_url(self) -> str:
        return self.server["fleet_prefect_api_url"]

    def get(self, path: str, auth: bool = True) -> tuple[int, bytes]:
        """GET a path of the server (relative to the UI's root) from the controller."""
        request = urllib.request.Request(self.api_url.removesuffix("/api") + path)
        if auth and self.server["prefect_server_auth_string"]:
            token = b64encode(self.server["prefect_server_auth_string"].encode()).decode()
            request.add_header("Authorization", "Basic " + token)
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()


def resolved_vars(inventory: str, names: list[str]) -> dict:
    """Ask Ansible for fleet-wide variables, templated as a play on the controller sees them."""
    expr = "{{ {" + ", ".join(f"'{n}': {n}" for n in names) + "} | to_json }}"
    result = run(
        [
            str(VENV_BIN / "ansible"),
            "--playbook-dir",
            str(ROOT),
            "-i",
            inventory,
            "localhost",
            "-m",
            "ansible.builtin.debug",
            "-a",
            f"msg={expr}",
        ]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    msg = json.loads(result.stdout.split("=>", 1)[1])["msg"]
    return json.loads(msg) if isinstance(msg, str) else msg


def groups_of(inventory: str) -> dict:
    result = run([str(VENV_BIN / "ansible-inventory"), "-i", inventory, "--list"])
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    data.pop("_meta")
    return {name: group.get("hosts", []) for name, group in data.items()}


def recaps(output: str) -> dict[str, dict[str, int]]:
    """host -> counters, from every PLAY RECAP in an ansible-playbook output (later runs add up)."""
    totals: dict[str, dict[str, int]] = {}
    for host, counters in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", output, re.M):
        for key, value in re.findall(r"(\w+)=(\d+)", counters):
            totals.setdefault(host, {}).setdefault(key, 0)
            totals[host][key] += int(value)
    return totals


@pytest.fixture(scope="session")
def lab() -> Lab:
    inventory = os.environ.get("LAB_INVENTORY", "inventories/lab")
    groups = groups_of(inventory)
    server = resolved_vars(
        inventory,
        [
            "ansible_host",
            "fleet_prefect_api_url",
            "fleet_prefect_version",
            "prefect_server_auth_string",
            "lab_state_dir",
        ],
    )
    return Lab(inventory=inventory, groups=groups, server=server)
