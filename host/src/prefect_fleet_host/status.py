"""`prefect-fleet status ENVIRONMENT...`: this worker host's state as JSON, for `make status`.

Per environment: the worker unit, the sync timer and the last sync's result and time, the
worker's /health, the checkout's commit (from the layout, no git), the branch's head on the
remote (asked as the environment's service user, with its deploy key), the runs in flight, and on
the host that registers the environment's deployments the outcome of the last registration. It
reads only; the health rules that judge it are the controller's (the collection's fleet_status
filter), so that one place says what healthy means. With `--dask ENV CLUSTER ADDRESS`, ENV's
report also says whether its Dask client (its venv) runs the same packages as CLUSTER, whose
scheduler is at ADDRESS (dask_versions), side by side with the rest.
"""

from __future__ import annotations

import json
import os
import platform
import pwd
import shlex
import subprocess
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from prefect_fleet_host import dask_versions, runs
from prefect_fleet_host.layout import Layout


def read_settings(path: Path) -> dict[str, str]:
    """KEY="value" lines of an environment's settings file, as the role writes them."""
    settings = {}
    try:
        text = path.read_text()
    except OSError:
        return settings
    for line in text.splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            words = shlex.split(value)
            settings[key] = words[0] if words else ""
    return settings


def units(environments: list[str]) -> dict[str, dict[str, str]]:
    """systemd's view of each environment's units, in one call."""
    names = []
    for environment in environments:
        names += [
            f"prefect-worker@{environment}.service",
            f"prefect-git-sync@{environment}.timer",
            f"prefect-git-sync@{environment}.service",
        ]
    out = subprocess.run(
        ["systemctl", "show", "--property=Id,ActiveState,Result,ExecMainExitTimestampMonotonic", *names],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    found: dict[str, dict[str, str]] = {}
    for block in out.strip().split("\n\n"):
        properties = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if "Id" in properties:
            found[properties["Id"]] = properties
    return found


def health(port: str) -> int:
    """The worker's /health status, -1 when it did not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (OSError, ValueError):
        return -1


def _as_user(command: list[str], user: str) -> tuple[list[str], dict[str, str]]:
    """The command run as the service user when this runs as root, and a minimal environment."""
    try:
        home = pwd.getpwnam(user).pw_dir if user else os.environ.get("HOME", "/")
    except KeyError:
        home = "/"
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": home}
    if os.geteuid() == 0 and user:
        command = ["runuser", "-u", user, "--", *command]
    return command, env


def remote_head(settings: dict[str, str], user: str) -> str:
    """The branch's head on the remote, asked as the service user with its own SSH settings."""
    command, env = _as_user(
        ["git", "ls-remote", settings.get("FLEET_REPO", ""), f"refs/heads/{settings.get('FLEET_BRANCH', '')}"], user
    )
    if settings.get("GIT_SSH_COMMAND"):
        env["GIT_SSH_COMMAND"] = settings["GIT_SSH_COMMAND"]
    try:
        out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=20, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.split("\t", 1)[0].strip() if out.strip() else ""


def dask_client(python: Path, cluster: str, address: str, user: str) -> dict:
    """dask_versions' answer for a client with this interpreter, as the service user; never raises.
    Isolated mode (-I): no PYTHON* variables, no user site, not the current directory on the path."""
    source = Path(dask_versions.__file__).read_text()
    command, env = _as_user([str(python), "-I", "-c", source, address], user)
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
        answer = json.loads(done.stdout) if done.returncode == 0 else {"error": done.stderr.strip()[-200:]}
    except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
        answer = {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    return {"cluster": cluster, "address": address, **answer}


def collect(
    environments: list[str], root: str, config_dir: str, user: str, dask: list[tuple[str, str, str]] = ()
) -> dict:
    """The host's report. dask: (environment, cluster, scheduler address) of the clients to compare."""
    config = Path(config_dir)
    settings = {e: read_settings(config / f"{e}.env") for e in environments}
    systemd = units(environments)
    in_flight = runs.in_flight(environments)
    with ThreadPoolExecutor(max_workers=max(2 * len(environments) + len(dask), 1)) as pool:
        heads = {e: pool.submit(remote_head, settings[e], user) for e in environments}
        healths = {e: pool.submit(health, settings[e].get("PREFECT_WORKER_WEBSERVER_PORT", "0")) for e in environments}
        clients = {
            e: pool.submit(dask_client, Layout.of(Path(root) / e).venv / "bin" / "python", cluster, address, user)
            for e, cluster, address in dask
        }
        report = {}
        for environment in environments:
            layout = Layout.of(Path(root) / environment)
            sync = systemd.get(f"prefect-git-sync@{environment}.service", {})
            finished = int(sync.get("ExecMainExitTimestampMonotonic", "0") or 0) // 1_000_000
            registers = (config / f"{environment}.deploy.json").exists()
            report[environment] = {
                "worker": systemd.get(f"prefect-worker@{environment}.service", {}).get("ActiveState", "?"),
                "timer": systemd.get(f"prefect-git-sync@{environment}.timer", {}).get("ActiveState", "?"),
                "sync_result": sync.get("Result", "?"),
                "sync_finished": finished,
                "health": healths[environment].result(),
                "commit": layout.current_commit(),
                "venv": (layout.current_venv() or Path("")).name or None,
                "head": heads[environment].result(),
                "runs": [run for e, run, _pid in in_flight if e == environment],
                "deploy": (layout.deploy_state() or None) if registers else None,
            }
            if environment in clients:
                report[environment]["dask"] = clients[environment].result()
    uptime = int(float(Path("/proc/uptime").read_text().split()[0]))
    return {"host": platform.node(), "hostname": platform.node(), "uptime": uptime, "environments": report}


def main(environments: list[str], root: str, config_dir: str, user: str, dask: list[tuple[str, str, str]] = ()) -> int:
    print(json.dumps(collect(environments, root, config_dir, user, dask), sort_keys=True))
    return 0
