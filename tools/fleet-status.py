#!/usr/bin/env python3
"""make status: the fleet's state as a table (or, with --json, as one JSON document), and an exit
status for monitoring: 0 healthy, 2 unhealthy, 1 when the state could not be read at all.

It runs playbooks/status.yml, which gathers every host's report and judges them with the
collection's fleet_status filter, and prints only the result (the playbook's own output only when
it could not produce one).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "collections"))

from ansible_collections.prefect_fleet.prefect.plugins.filter.fleet_status import fleet_status_table  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-i", "--inventory", default="inventories/lab")
    parser.add_argument("--json", action="store_true", help="print the status document as JSON")
    parser.add_argument("--limit", help="as ansible-playbook's --limit")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        document = Path(scratch) / "status.json"
        command = [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            args.inventory,
            "playbooks/status.yml",
            "-e",
            f"status_file={document}",
            *(["--limit", args.limit] if args.limit else []),
        ]
        env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"}
        run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        if not document.exists():
            sys.stderr.write(run.stdout[-6000:] + run.stderr[-3000:])
            print("fleet-status: the playbook produced no status (its output is above)", file=sys.stderr)
            return 1
        status = json.loads(document.read_text())
    print(json.dumps(status, indent=1, sort_keys=True) if args.json else fleet_status_table(status))
    return 0 if status["healthy"] else 2


if __name__ == "__main__":
    sys.exit(main())
