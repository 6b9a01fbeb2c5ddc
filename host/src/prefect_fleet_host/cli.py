"""`prefect-fleet`: the fleet's programs on a worker host, one subcommand each.

    prefect-fleet git-sync ENV             move ENV's checkout to its branch's head (the sync unit)
    prefect-fleet after-sync ENV CONFIG    the sync's hook, as root: restart, register a new commit
    prefect-fleet sync ENV                 run the sync unit now; print where the checkout was and is
    prefect-fleet checkout ENV             where ENV's checkout is (commit, tree, venv, deployed commit)
    prefect-fleet runs ENV...              the flow runs in flight on this host
    prefect-fleet status ENV... [--dask ENV CLUSTER ADDRESS]...
                                           this host's state as JSON (make status judges it)
    prefect-fleet deploy [--python PY] ... register ENV's deployments (with PY, ENV's own venv)

`checkout`, `sync` and `status` print JSON: playbooks and tests ask them instead of reading the layout.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from prefect_fleet_host import __version__
from prefect_fleet_host.layout import Layout

DEFAULT_ROOT = "/opt/prefect"


def sync_now(environment: str, root: str) -> tuple[int, dict]:
    """Run the environment's sync unit now and wait for it (the timer's own unit, so that two syncs
    never race); report the checkout before and after.

    `systemctl start` on a unit that is already starting joins that run, and a run the timer began
    before this call may have fetched before the push being announced. So when one was running,
    the unit is started once more after it ended: that run fetches after this call began."""
    layout = Layout.of(Path(root) / environment)
    before = (layout.current_commit(), layout.current_venv())
    unit = f"prefect-git-sync@{environment}.service"
    state = subprocess.run(
        ["systemctl", "show", "--property=ActiveState", "--value", unit], capture_output=True, text=True, check=False
    )
    for _ in range(2 if state.stdout.strip() in ("activating", "active", "deactivating") else 1):
        started = subprocess.run(["systemctl", "start", unit], capture_output=True, text=True, check=False)
    after = (layout.current_commit(), layout.current_venv())
    report = {
        "environment": environment,
        "before": before[0],
        "commit": after[0],
        "venv": after[1].name if after[1] else None,
        # A new commit, or the same one on a new venv (requirements or Prefect's pin changed).
        "updated": before != after,
        "ok": started.returncode == 0,
        "deployed_commit": layout.deployed_commit(),
    }
    if started.returncode != 0:
        # The sync's own log of this run: its hook prints the registration's outcome there.
        journal = subprocess.run(
            ["journalctl", "-q", "-o", "cat", "-u", unit, "--since", "-2min"],
            capture_output=True,
            text=True,
            check=False,
        )
        report["log"] = journal.stdout.splitlines()[-20:]
    return (0 if started.returncode == 0 else 1), report


def run_deploy(python: str | None, argv: list[str]) -> int:
    """The registrar needs Prefect: with --python, run it with that interpreter (an environment's
    own venv), this package appended to its path so that the venv's own packages come first."""
    if python is None:
        from prefect_fleet_host import deploy

        return deploy.main(argv)
    here = str(Path(__file__).resolve().parent.parent)
    bootstrap = f"import sys; sys.path.append({here!r}); from prefect_fleet_host import deploy; sys.exit(deploy.main())"
    os.execv(python, [python, "-c", bootstrap, *argv])
    return 1  # not reached


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="prefect-fleet", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("git-sync", help="move an environment's checkout to its branch's head")
    command.add_argument("environment")
    command = commands.add_parser("after-sync", help="the sync's hook (as root)")
    command.add_argument("environment")
    command.add_argument("config_dir")
    for name, text in (("sync", "run the sync unit now, report the checkout"), ("checkout", "where a checkout is")):
        command = commands.add_parser(name, help=text)
        command.add_argument("environment")
        command.add_argument("--root", default=DEFAULT_ROOT, help=f"the environments' root ({DEFAULT_ROOT})")
    command = commands.add_parser("runs", help="the flow runs in flight on this host")
    command.add_argument("environments", nargs="+")
    command = commands.add_parser("status", help="this host's state as JSON")
    command.add_argument("environments", nargs="+")
    command.add_argument("--root", default=DEFAULT_ROOT, help=f"the environments' root ({DEFAULT_ROOT})")
    command.add_argument("--config-dir", default="/etc/prefect-worker", help="the environments' settings files")
    command.add_argument(
        "--user-prefix", default="prefect-", help="an environment's service user is this + its name (prefect-)"
    )
    command.add_argument(
        "--dask",
        nargs=3,
        action="append",
        default=[],
        metavar=("ENV", "CLUSTER", "ADDRESS"),
        help="compare ENV's Dask client (its venv) with CLUSTER, whose scheduler is at ADDRESS",
    )
    command = commands.add_parser("deploy", help="register an environment's deployments", add_help=False)
    command.add_argument("--python", help="the interpreter to run the registrar with (the environment's venv)")
    args, rest = parser.parse_known_args(argv)
    if rest and args.command != "deploy":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")

    if args.command == "git-sync":
        from prefect_fleet_host import git_sync

        return git_sync.main(args.environment)
    if args.command == "after-sync":
        from prefect_fleet_host import after_sync

        return after_sync.main(args.environment, args.config_dir)
    if args.command == "sync":
        rc, report = sync_now(args.environment, args.root)
        print(json.dumps(report, sort_keys=True))
        return rc
    if args.command == "checkout":
        print(json.dumps(Layout.of(Path(args.root) / args.environment).describe(), sort_keys=True))
        return 0
    if args.command == "status":
        from prefect_fleet_host import status

        return status.main(
            args.environments, args.root, args.config_dir, args.user_prefix, [tuple(d) for d in args.dask]
        )
    if args.command == "runs":
        from prefect_fleet_host import runs

        return runs.main(args.environments)
    return run_deploy(args.python, rest)


if __name__ == "__main__":
    sys.exit(main())
