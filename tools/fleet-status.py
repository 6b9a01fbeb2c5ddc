#!/usr/bin/env python3
"""make status: the fleet's state as a table (or, with --json, as one JSON document), and an exit
status for monitoring: 0 healthy, 2 unhealthy, 1 when the state could not be read at all.

It runs playbooks/status.yml, which gathers every host's report and judges them with the
collection's fleet_status filter, with Ansible's JSON callback, takes the status document from the
play's custom stats, and prints only that (what failed instead, when the playbook could not
produce it).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "collections"))

from ansible_collections.prefect_fleet.prefect.plugins.filter.fleet_status import fleet_status_table  # noqa: E402


def _output(stdout: str) -> dict:
    try:
        return json.loads(stdout[stdout.index("{") :])
    except ValueError:
        return {}


def status_document(stdout: str) -> dict | None:
    """The status document that playbooks/status.yml hands over as a custom stat, or None."""
    return _output(stdout).get("global_custom_stats", {}).get("fleet_status")


def failures(stdout: str) -> list[str]:
    """What failed or was unreachable, a line per host and task, from the JSON callback's output."""
    lines = []
    for play in _output(stdout).get("plays", []):
        for task in play.get("tasks", []):
            for host, result in task.get("hosts", {}).items():
                if result.get("failed") or result.get("unreachable"):
                    lines.append(f"{host}: {task['task']['name']}: {str(result.get('msg', ''))[:500]}")
    return lines or [stdout[-3000:]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-i", "--inventory", default="inventories/lab")
    parser.add_argument("--json", action="store_true", help="print the status document as JSON")
    parser.add_argument("--limit", help="as ansible-playbook's --limit")
    args = parser.parse_args()
    command = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        "-i",
        args.inventory,
        "playbooks/status.yml",
        *(["--limit", args.limit] if args.limit else []),
    ]
    # The JSON callback alone on stdout: the project's timing callback would print into it.
    callback = {
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
        "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.json",
        "ANSIBLE_SHOW_CUSTOM_STATS": "true",
    }
    run = subprocess.run(command, cwd=ROOT, env={**os.environ, **callback}, capture_output=True, text=True, check=False)
    status = status_document(run.stdout)
    if status is None:
        sys.stderr.write(run.stderr[-3000:] + "".join(f"{line}\n" for line in failures(run.stdout)))
        print("fleet-status: the playbook produced no status (what it printed is above)", file=sys.stderr)
        return 1
    print(json.dumps(status, indent=1, sort_keys=True) if args.json else fleet_status_table(status))
    return 0 if status["healthy"] else 2


if __name__ == "__main__":
    # A reader that stops early (`| head`) ends the output quietly, as for any Unix filter.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())
