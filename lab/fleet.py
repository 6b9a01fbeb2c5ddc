"""The lab fleet as the tests and benchmarks see it: its inventory, the fleet's variables as
Ansible resolves them, and SSH and git access with the lab's generated key."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from lab import prefect_api
from lab.inventory import ROOT, resolve

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


def wait_for(predicate, timeout: float, what: str, interval: float = 0.5):
    """Poll `predicate` until it returns something true; return that and the seconds it took. Fail
    with `what` after `timeout` seconds."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        value = predicate()
        if value:
            return value, time.monotonic() - started
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


@dataclass
class Api:
    """A small client for the Prefect API, from the controller."""

    url: str
    auth: str = field(default="", repr=False)  # a secret: kept out of tracebacks and logs
    ca_file: str = ""  # the CA that certifies the API (the lab's fleet CA, on the controller)

    def call(self, method: str, path: str, body: dict | None = None):
        """The decoded answer; an error status raises urllib's HTTPError (after lab.prefect_api
        retried what Prefect's own client retries)."""
        url = self.url + path
        status, text = prefect_api.request(url, method, body, prefect_api.auth_headers(self.auth), ca_file=self.ca_file)
        if status >= 400:
            raise urllib.error.HTTPError(url, status, text.decode(errors="replace")[:500], {}, io.BytesIO(text))
        return json.loads(text) if text else None


# What Lab.of resolves: the fleet variables the tests and benchmarks need.
FLEET_VARIABLES = [
    "fleet_prefect_api_url",
    "fleet_prefect_environment_apis",
    "fleet_prefect_version",
    "prefect_server_auth_string",
    "lab_state_dir",
    "fleet_flows_repo",
    "fleet_environments",
    "prefect_worker_sync_interval",
    "fleet_dask_scheduler_addresses",
    "fleet_dask_clusters",
    "fleet_tls_ca_dir",
    "fleet_dask_tls",
]


@dataclass(frozen=True)
class Lab:
    inventory: str
    groups: dict
    server: dict  # fleet variables, as Ansible resolves them on the controller
    addresses: dict  # host -> ansible_host

    @property
    def hosts(self) -> list[str]:
        """The lab's containers: every host but the machine itself (group lab_machine, the lab's swarm)."""
        return [h for h in self.groups["all"] if h not in self.groups.get("lab_machine", [])]

    @property
    def key(self) -> str:
        return f"{self.server['lab_state_dir']}/id_ed25519"

    def ssh(
        self, host: str, command: str, check: bool = True, input: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run a command as root on a lab host, over SSH as Ansible does; `input` goes to its stdin
        (the way to hand it a secret without putting the secret on a command line)."""
        result = subprocess.run(
            ["ssh", "-i", self.key, *SSH_OPTIONS, f"root@{self.addresses[host]}", command],
            input=input,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
        if check:
            assert result.returncode == 0, f"{host}: {command}\n{result.stdout}{result.stderr}"
        return result

    def git_env(self) -> dict[str, str]:
        return {**os.environ, "GIT_SSH_COMMAND": " ".join(["ssh", "-i", self.key, *SSH_OPTIONS])}

    def branch_heads(self) -> dict[str, str]:
        """Branch -> commit, as the lab's flows repository has them now."""
        out = subprocess.run(
            ["git", "ls-remote", "--heads", self.server["fleet_flows_repo"]],
            env=self.git_env(),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return {ref.removeprefix("refs/heads/"): sha for sha, ref in (line.split() for line in out.splitlines())}

    @property
    def api_url(self) -> str:
        return self.server["fleet_prefect_api_url"]

    @property
    def ca_file(self) -> str:
        """The lab's fleet CA certificate on the controller: what certifies its API."""
        return f"{self.server['fleet_tls_ca_dir']}/ca.crt"

    @property
    def tls(self):
        """An SSL context that trusts the lab's fleet CA alone, for urllib calls to the lab's API."""
        return prefect_api.tls_context(self.ca_file)

    @property
    def api(self) -> Api:
        return Api(self.api_url, self.server["prefect_server_auth_string"], self.ca_file)

    def api_for(self, environment: str) -> Api:
        """The API of an environment's server tier, with that tier's credential."""
        api = self.server["fleet_prefect_environment_apis"][environment]
        return Api(api["url"], api["auth_string"], self.ca_file)

    def get(self, path: str, auth: bool = True) -> tuple[int, bytes]:
        """GET a path of the server (relative to the UI's root) from the controller."""
        headers = prefect_api.auth_headers(self.server["prefect_server_auth_string"]) if auth else {}
        request = urllib.request.Request(self.api_url.removesuffix("/api") + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=20, context=self.tls) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    @classmethod
    def of(cls, inventory: str) -> Lab:
        listing = subprocess.run(
            [str(Path(sys.executable).parent / "ansible-inventory"), "-i", inventory, "--list"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        data = json.loads(listing.stdout)
        hostvars = data.pop("_meta")["hostvars"]
        groups = {name: group.get("hosts", []) for name, group in data.items()}
        addresses = {host: v["ansible_host"] for host, v in hostvars.items()}
        return cls(inventory=inventory, groups=groups, server=resolve(inventory, FLEET_VARIABLES), addresses=addresses)


def workers(lab: Lab) -> list[str]:
    return lab.groups["prefect_workers"]


def checkout_head(lab: Lab, host: str, environment: str) -> str:
    """The commit of `environment`'s checkout on `host`, as git sees it there."""
    return lab.ssh(
        host, f"git -c safe.directory='*' -C /opt/prefect/{environment}/current rev-parse HEAD"
    ).stdout.strip()


def worker_process(lab: Lab, host: str, environment: str, name: str) -> list[str]:
    """The fields of /proc/<pid>/<name> (`cmdline`, `environ`) of `environment`'s running worker on `host`."""
    pid = lab.ssh(host, f"systemctl show -P MainPID prefect-worker@{environment}").stdout.strip()
    return lab.ssh(host, f"tr '\\0' '\\n' < /proc/{pid}/{name}").stdout.splitlines()


def wait_for_checkouts(lab: Lab, environment: str, commit: str, timeout: float) -> float:
    """Seconds until every worker host's checkout of `environment` is at `commit` (fails at timeout)."""
    started = time.monotonic()
    pending = set(workers(lab))
    while pending and time.monotonic() - started < timeout:
        pending = {host for host in pending if checkout_head(lab, host, environment) != commit}
        if pending:
            time.sleep(0.5)
    assert not pending, f"{environment} checkouts not at {commit[:12]} after {timeout:.0f} s on {sorted(pending)}"
    return time.monotonic() - started


def deployment(api: Api, flow: str, name: str) -> dict | None:
    """The deployment `flow`/`name` as the API has it, or None."""
    try:
        return api.call("GET", f"/deployments/name/{flow}/{name}")
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise


def deployer(lab: Lab) -> str:
    """The host that registers every environment's deployments: the first worker host (group_vars)."""
    return workers(lab)[0]


def deploy_state(lab: Lab, environment: str) -> dict:
    out = lab.ssh(deployer(lab), f"cat /opt/prefect/{environment}/deploy-state.json", check=False).stdout
    return json.loads(out) if out.strip() else {}


def settle(lab: Lab, environment: str, commit: str) -> None:
    """Wait until every checkout of `environment` is at `commit` and its deployments are registered
    from it: a test that pushed leaves the lab as the next test expects it (checkouts at the heads)."""
    bound = 3 * int(lab.server["prefect_worker_sync_interval"]) + 60
    wait_for_checkouts(lab, environment, commit, timeout=bound)
    wait_for(
        lambda: deploy_state(lab, environment).get("commit") == commit, bound, f"{environment} registered {commit[:12]}"
    )
