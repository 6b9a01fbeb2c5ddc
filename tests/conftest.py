"""Shared helpers for the unit and lab tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The venv pytest runs from (make passes VENV; CI keeps it outside the clone).
VENV_BIN = Path(sys.executable).parent


def ansible_env() -> dict[str, str]:
    """The environment the Makefile gives Ansible: the project's venv first on PATH, no colour."""
    return {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_NOCOLOR": "1",
    }


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, env=ansible_env(), capture_output=True, text=True, check=False, **kwargs)
