"""Every shipped inventory parses, has one Prefect server, derives label groups, and site.yml
passes Ansible's syntax check against it."""

from __future__ import annotations

import ipaddress
import json

import pytest
import yaml

from tests.conftest import ROOT, VENV_BIN, run

INVENTORIES = sorted(p.name for p in (ROOT / "inventories").iterdir() if p.is_dir())


def _inventory(name: str) -> dict:
    result = run([str(VENV_BIN / "ansible-inventory"), "-i", f"inventories/{name}", "--list"])
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_three_inventories_exist():
    assert {"lab", "staging", "production"} <= set(INVENTORIES)


@pytest.mark.parametrize("name", INVENTORIES)
def test_inventory_shape(name):
    inv = _inventory(name)
    assert len(inv["prefect_server"]["hosts"]) == 1
    hostvars = inv["_meta"]["hostvars"]
    for host in inv["prefect_workers"]["hosts"]:
        labels = hostvars[host]["fleet_labels"]
        assert labels, f"{host} has no fleet_labels"
        for label in labels:
            group = "label_" + label.replace("-", "_")
            assert host in inv[group]["hosts"], f"{host} missing from derived group {group}"


@pytest.mark.parametrize("name", INVENTORIES)
def test_environment_groups_hold_the_worker_hosts(name):
    inv = _inventory(name)
    workers = set(inv["prefect_workers"]["hosts"])
    environments = yaml.safe_load((ROOT / "inventories" / name / "group_vars/all/environments.yml").read_text())
    for environment in environments["fleet_environments"]:
        assert set(inv[f"env_{environment}"]["hosts"]) == workers


def test_lab_hosts_lie_in_the_lab_subnet():
    lab = yaml.safe_load((ROOT / "inventories/lab/group_vars/all/lab.yml").read_text())
    subnet = ipaddress.ip_network(lab["lab_subnet"])
    hostvars = _inventory("lab")["_meta"]["hostvars"]
    addresses = [ipaddress.ip_address(v["ansible_host"]) for v in hostvars.values()]
    assert all(a in subnet for a in addresses)
    assert len(set(addresses)) == len(addresses), "two lab hosts share an address"


@pytest.mark.parametrize("name", INVENTORIES)
def test_site_syntax(name):
    result = run([str(VENV_BIN / "ansible-playbook"), "-i", f"inventories/{name}", "--syntax-check", "site.yml"])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", INVENTORIES)
def test_targeting_by_label(name):
    inv = _inventory(name)
    label = next(iter(inv["_meta"]["hostvars"][inv["prefect_workers"]["hosts"][0]]["fleet_labels"]))
    result = run(
        [
            str(VENV_BIN / "ansible"),
            "-i",
            f"inventories/{name}",
            "label_" + label.replace("-", "_"),
            "--list-hosts",
        ]
    )
    assert result.returncode == 0, result.stderr
    assert inv["prefect_workers"]["hosts"][0] in result.stdout
