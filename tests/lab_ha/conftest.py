"""Fixtures of the HA lab's end-to-end tests (make e2e-ha): the lab of inventories/lab-ha."""

from __future__ import annotations

import os

import pytest

from lab.fleet import Lab


@pytest.fixture(scope="session")
def lab() -> Lab:
    lab = Lab.of(os.environ.get("LAB_INVENTORY", "inventories/lab-ha"))
    assert len(lab.groups["prefect_server"]) > 1, f"{lab.inventory} is not an HA inventory (one server host)"
    return lab
