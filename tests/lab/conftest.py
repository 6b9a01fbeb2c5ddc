"""Fixtures of the end-to-end tests, which run against the lab fleet that `make lab` brought up."""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.error
import urllib.request
from base64 import b64encode
from dataclasses import dataclass

import pytest

from lab.inventory import resolve
from tests.conftest import VENV_BIN, run


@dataclass(frozen=True)
class Lab:
    inventory: str
    groups: dict
    server: dict  # fleet variables, as Ansible resolves them on the controller
    addresses: dict  # host -> ansible_host

    @property
    def key(self) -> str:
        return f"{self.server['lab_state_dir']}/id_ed25519"

    def ssh(self, host: str, command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a command as root on a lab host, over SSH as Ansible does."""
        result = subprocess.run(
            ["ssh", "-i", self.key, *SSH_OPTIONS, f"root@{self.addresses[host]}", command],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if check:
            assert result.returncode == 0, f"{host}: {command}\n{result.stdout}{result.stderr}"
        return result

    def git_env(self) -> dict[str, str]:
        return {**os.environ, "GIT_SSH_COMMAND": " ".join(["ssh", "-i", self.key, *SSH_OPTIONS])}

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


SSH_OPTIONS = [
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "BatchMode=yes",
]


@pytest.fixture(scope="session")
def lab() -> Lab:
    inventory = os.environ.get("LAB_INVENTORY", "inventories/lab")
    groups = groups_of(inventory)
    server = resolve(
        inventory,
        [
            "fleet_prefect_api_url",
            "fleet_prefect_version",
            "prefect_server_auth_string",
            "lab_state_dir",
            "fleet_flows_repo",
            "fleet_environments",
            "prefect_worker_sync_interval",
        ],
    )
    listing = json.loads(run([str(VENV_BIN / "ansible-inventory"), "-i", inventory, "--list"]).stdout)
    addresses = {host: v["ansible_host"] for host, v in listing["_meta"]["hostvars"].items()}
    return Lab(inventory=inventory, groups=groups, server=server, addresses=addresses)
