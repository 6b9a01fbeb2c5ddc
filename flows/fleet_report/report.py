"""Report where a flow run ran: the host, the working directory, the git commit, the environment
and the Python that ran it.

The fleet's end-to-end tests and `make lab` read the FLEET_REPORT line from the run's logs.
Runs on its own too, with no server: `python flows/fleet_report/report.py`.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

from prefect import flow, get_run_logger


def git_commit(path: str) -> str:
    """The commit checked out at `path`, or "unknown" outside a git checkout."""
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return result.stdout.strip()


# One in-process retry of an exception in the flow. A run whose process died is another matter:
# the fleet's automations mark it Crashed and schedule it again (docs/operations.md).
@flow(name="fleet-report", retries=1, retry_delay_seconds=5)
def fleet_report(note: str = "", seconds: float = 0.0) -> dict[str, str]:
    """`seconds` > 0 makes the run last that long (the fleet's restart tests load it that way)."""
    time.sleep(seconds)
    cwd = os.getcwd()
    report = {
        "host": socket.gethostname(),
        "cwd": cwd,
        "commit": git_commit(cwd),
        "environment": os.environ.get("FLEET_ENVIRONMENT", "local"),
        "note": note,
        "python": sys.executable,
    }
    get_run_logger().info("FLEET_REPORT %s", json.dumps(report, sort_keys=True))
    return report


if __name__ == "__main__":
    print(json.dumps(fleet_report(note="local run")))
