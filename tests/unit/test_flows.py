"""The example flows run on their own, with no server and no cluster (Prefect starts a temporary
local API for the run)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

from tests.conftest import ROOT


def run_locally(tmp_path, script: str, *args: str) -> dict:
    """Run a flow file as a script in `tmp_path`, with no Prefect or Dask settings of this process;
    return the JSON it prints last."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "DASK_"))}
    env["PREFECT_HOME"] = str(tmp_path)
    # The temporary API migrates a new database before it answers: Prefect waits 20 s for it, which
    # a busy machine (make test runs lint beside these tests) has exceeded. Two minutes still
    # catches a server that never starts.
    env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "120"
    result = subprocess.run(
        [sys.executable, str(ROOT / "flows" / script), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_fleet_report_runs_locally(tmp_path):
    report = run_locally(tmp_path, "fleet_report/report.py")
    assert report == {
        "host": socket.gethostname(),
        "cwd": str(tmp_path),
        "commit": "unknown",
        "environment": "local",
        "note": "local run",
        "python": sys.executable,
    }


def test_dask_mapping_runs_locally_on_an_in_process_cluster(tmp_path):
    report = run_locally(tmp_path, "dask_mapping/mapping.py", "20")
    assert report["scheduler"] == "in-process"
    assert report["commit"] == "unknown"
    assert report["tasks"] == 20
    assert report["indexes"]
    # Every task ran in the flow's own process, on its one in-process worker.
    assert report["in_process"] == 20
    assert len(report["workers"]) == 1
    assert report["task_hosts"] == [socket.gethostname()]
