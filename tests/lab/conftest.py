"""Fixtures of the end-to-end tests, which run against the lab fleet that `make lab` brought up."""

from __future__ import annotations

import os
import re

import pytest

from lab.fleet import Lab


def recaps(output: str) -> dict[str, dict[str, int]]:
    """host -> counters, from every PLAY RECAP in an ansible-playbook output (later runs add up)."""
    totals: dict[str, dict[str, int]] = {}
    for host, counters in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", output, re.M):
        for key, value in re.findall(r"(\w+)=(\d+)", counters):
            totals.setdefault(host, {}).setdefault(key, 0)
            totals[host][key] += int(value)
    return totals


@pytest.fixture(scope="session")
def lab() -> Lab:
    return Lab.of(os.environ.get("LAB_INVENTORY", "inventories/lab"))
