"""Shared helpers for the unit and lab tests."""

from __future__ import annotations

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
