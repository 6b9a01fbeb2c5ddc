"""The one way tests and benchmarks run ansible-playbook: the project's venv first on PATH, from
the repository's root, no colour, without the flags of an enclosing `make` (a playbook started
from a test is a run of its own, not a job of the suite's `make -j2`)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment the Makefile gives Ansible, plus `extra`."""
    return {
        **{k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")},
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_NOCOLOR": "1",
        **(extra or {}),
    }


def playbook(
    inventory: str | Path,
    *args: str,
    check: bool = True,
    timeout: float | None = None,
    env: dict[str, str] | None = None,
    cwd: str | Path = ROOT,
) -> subprocess.CompletedProcess[str]:
    """Run `ansible-playbook -i INVENTORY ARGS...` and return it; with `check` (the default), fail
    the calling test with the run's last output unless it succeeded."""
    if not isinstance(inventory, (str, os.PathLike)):
        raise TypeError(f"playbook() takes an inventory's path, got {type(inventory).__name__} (lab.inventory?)")
    result = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(inventory), *args],
        cwd=cwd,
        env=environment(env),
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    if check:
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    return result


def task_output(output: str, role: str, task: str) -> str:
    """What the first task of `role` whose name starts with `task` printed in a playbook's output
    (its results, a debug task's message), up to the next task."""
    return output.split(f"TASK [{role} : {task}", 1)[1].split("\nTASK [", 1)[0]


def task_results(output: str, role: str, task: str) -> list[tuple[str, str]]:
    """(status, host) of every result line (ok, changed, skipping, failed, fatal, ...) that the first
    task of `role` whose name starts with `task` printed in a playbook's output."""
    return re.findall(r"^(\w+): \[([^\]]+)\]", task_output(output, role, task), re.M)


def failures(output: str) -> str:
    """Each task that failed in a playbook's output, with its failed results: what a test shows
    when a long run failed far above the end of its output."""
    found = []
    for section in output.split("\nTASK [")[1:]:
        failed = [line[:1500] for line in section.splitlines() if line.startswith("fatal: [")]
        if failed:
            found.append("TASK [" + section.splitlines()[0] + "\n" + "\n".join(failed))
    return "\n".join(found)


def recaps(output: str) -> dict[str, dict[str, int]]:
    """host -> counters, from every PLAY RECAP in an ansible-playbook output (later runs add up)."""
    totals: dict[str, dict[str, int]] = {}
    for host, counters in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", output, re.M):
        for key, value in re.findall(r"(\w+)=(\d+)", counters):
            totals.setdefault(host, {}).setdefault(key, 0)
            totals[host][key] += int(value)
    return totals


# Ansible's JSON callback alone on stdout: the project's timing callback (ansible.cfg) would print
# around its document.
JSON_CALLBACK = {"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.json"}


def json_report(output: str) -> dict:
    """The document the JSON callback printed in a playbook's output (text before or after it, such
    as warnings or another callback's, is left out)."""
    report, _ = json.JSONDecoder().raw_decode(output[output.index("{") :])
    return report
