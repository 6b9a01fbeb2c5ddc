"""Shared helpers for the unit and lab tests."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from lab.ansible import environment

ROOT = Path(__file__).resolve().parent.parent
# The venv pytest runs from (make passes VENV; CI keeps it outside the clone).
VENV_BIN = Path(sys.executable).parent


def ansible_env() -> dict[str, str]:
    """The environment the Makefile gives Ansible (lab.ansible, the one place that says it)."""
    return environment()


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, env=ansible_env(), capture_output=True, text=True, check=False, **kwargs)


def recaps(output: str) -> dict[str, dict[str, int]]:
    """host -> counters, from every PLAY RECAP in an ansible-playbook output (later runs add up)."""
    totals: dict[str, dict[str, int]] = {}
    for host, counters in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", output, re.M):
        for key, value in re.findall(r"(\w+)=(\d+)", counters):
            totals.setdefault(host, {}).setdefault(key, 0)
            totals[host][key] += int(value)
    return totals
