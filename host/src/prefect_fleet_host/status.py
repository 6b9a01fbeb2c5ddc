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


def service_user(prefix: str, environment: str) -> str:
    """An environment's service user (prefect-production); with no prefix, the user this runs as."""
    return prefix + environment if prefix else ""


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


def dask_clients(venv: Path, targets: list[tuple[str, str]], user: str, settings: dict[str, str]) -> list[dict]:
    """dask_versions' answers for a client of this venv, one per (cluster, scheduler address), from
    one process run as the service user with its environment's Dask settings (`settings`: its TLS
    client certificate among them); never raises. Isolated mode (-I): no PYTHON* variables, no
    user site, not the current directory on the path."""
    source = Path(dask_versions.__file__).read_text()
    command, env = _as_user([str(venv / "bin" / "python"), "-I", "-c", source, *(a for _c, a in targets)], user)
    env.update({key: value for key, value in settings.items() if key.startswith("DASK_DISTRIBUTED__")})
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
        answers = (
            json.loads(done.stdout) if done.returncode == 0 else [{"error": done.stderr.strip()[-200:]}] * len(targets)
        )
    except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
        answers = [{"error": f"{type(exc).__name__}: {str(exc)[:200]}"}] * len(targets)
    return [{"cluster": c, "address": a, **answer} for (c, a), answer in zip(targets, answers, strict=True)]


def collect(
    environments: list[str], root: str, config_dir: str, user_prefix: str, dask: list[tuple[str, str, str]] = ()
) -> dict:
    """The host's report. Each environment's questions are asked as its own service user,
    user_prefix + environment. dask: (environment, cluster, scheduler address) of the clients to
    compare."""
    config = Path(config_dir)
    settings = {e: read_settings(config / f"{e}.env") for e in environments}
    systemd = units(environments)
    in_flight = runs.in_flight(environments)
    # The Dask clients by venv (its real path): importing distributed is most of a comparison's
    # cost, asked once per venv (as the user of the first environment that uses it).
    shared: dict[str, list[tuple[str, str, str]]] = {}
    for environment, cluster, address in dask:
        shared.setdefault(os.path.realpath(Layout.of(Path(root) / environment).venv), []).append(
            (environment, cluster, address)
        )
    with ThreadPoolExecutor(max_workers=max(2 * len(environments) + len(shared), 1)) as pool:
        heads = {e: pool.submit(remote_head, settings[e], service_user(user_prefix, e)) for e in environments}
        healths = {e: pool.submit(health, settings[e].get("PREFECT_WORKER_WEBSERVER_PORT", "0")) for e in environments}
        compared = {
            venv: pool.submit(
                dask_clients,
                Path(venv),
                [(c, a) for _e, c, a in members],
                service_user(user_prefix, members[0][0]),
                settings.get(members[0][0], {}),
            )
            for venv, members in shared.items()
        }
        clients = {
            environment: answer
            for venv, members in shared.items()
            for (environment, _c, _a), answer in zip(members, compared[venv].result(), strict=True)
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
                "sync_error": layout.sync_error(),
                "health": healths[environment].result(),
                "commit": layout.current_commit(),
                "venv": (layout.current_venv() or Path("")).name or None,
                "head": heads[environment].result(),
                "runs": [run for e, run, _pid in in_flight if e == environment],
                "deploy": (layout.deploy_state() or None) if registers else None,
            }
            if environment in clients:
                report[environment]["dask"] = clients[environment]
    uptime = int(float(Path("/proc/uptime").read_text().split()[0]))
    return {"host": platform.node(), "hostname": platform.node(), "uptime": uptime, "environments": report}


def main(
    environments: list[str], root: str, config_dir: str, user_prefix: str, dask: list[tuple[str, str, str]] = ()
) -> int:
    print(json.dumps(collect(environments, root, config_dir, user_prefix, dask), sort_keys=True))
    return 0
