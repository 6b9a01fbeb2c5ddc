"""`prefect-fleet after-sync ENVIRONMENT CONFIG_DIR`: run as root after each sync of an
environment's checkout (the ExecStartPost of prefect-git-sync@ENVIRONMENT), with its settings.

1. The flows' virtualenv changed under the worker: restart it. The restart is the worker unit's
   hand-off (KillSignal=SIGKILL, KillMode=process): its runs in flight go on, on the old
   virtualenv, which the sync keeps (the two newest per environment), and end Completed.
2. On the host that registers this environment's deployments (it has the environment's
   CONFIG_DIR/ENVIRONMENT.deploy.json), the checkout reached a commit not registered yet: register
   that commit's deployments now (prefect-deploy@ENVIRONMENT), and put the outcome in this unit's
   log too. A commit whose spec is wrong is not tried again; one whose registration met an API
   failure is, at the next sync.
3. The store of venvs that environments shared before each had its own user (<root>/_venvs): what
   no environment links to and no process uses any more is removed (prefect-fleet git-sync's
   prune_shared_store), then the store once empty.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prefect_fleet_host.git_sync import prune_shared_store
from prefect_fleet_host.layout import Layout


def outcome(state: dict, commit: str) -> tuple[bool, list[str]]:
    """(ok, lines) of a registration's recorded outcome, for the sync's log."""
    head = f"deployments of {commit[:12]}:"
    if state.get("commit") != commit:
        return False, [f"{head} the registration recorded no outcome"]
    if state.get("ok"):
        done = [
            f"{key} {', '.join(state[key])}" for key in ("created", "updated", "removed", "paused") if state.get(key)
        ]
        return True, [f"{head} {'; '.join(done) or 'no change'}"]
    why = "the spec is wrong:" if state.get("kind") == "spec" else "the API failed:"
    return False, [f"{head} not registered, {why}"] + [f"  {error}" for error in state.get("errors", [])]


def main(environment: str, config_dir: str) -> int:
    layout = Layout.of(os.environ["FLEET_ENV_DIR"])
    if layout.restart_marker.exists():
        layout.restart_marker.unlink()
        subprocess.run(["systemctl", "try-restart", f"prefect-worker@{environment}.service"], check=False)
    prune_shared_store(layout.env_dir.parent)

    if not (Path(config_dir) / f"{environment}.deploy.json").exists():
        return 0
    commit = layout.current_commit()
    if commit is None or layout.deployed_commit() == commit:
        return 0
    unit = f"prefect-deploy@{environment}.service"
    started = subprocess.run(["systemctl", "start", unit], check=False)
    ok, lines = outcome(layout.deploy_state(), commit)
    for line in lines:
        print(line, file=sys.stdout if ok else sys.stderr)
    if started.returncode != 0:
        print(
            f"prefect-fleet after-sync[{environment}]: registering the deployments of {commit[:12]} failed"
            f" (journalctl -u {unit})",
            file=sys.stderr,
        )
        return 1
    return 0
