"""Every shipped inventory parses, has its Prefect server tier (one server, or an HA tier with its
Redis and load balancer), derives label groups, and site.yml passes Ansible's syntax check against it."""

from __future__ import annotations

import ipaddress
import json

import pytest
import yaml

from lab.ansible import playbook
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
    servers = inv["prefect_server"]["hosts"]
    if len(servers) > 1:
        # An HA tier (docs/high-availability.md): one Redis host, one load balancer, one database.
        for group in ("prefect_redis", "prefect_load_balancer", "prefect_database"):
            assert len(inv[group]["hosts"]) == 1, f"an HA inventory needs one host in {group}"
    else:
        assert len(servers) == 1
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


@pytest.mark.parametrize(("name", "settings"), [("lab", "lab.yml"), ("lab-ha", "zz_ha.yml")])
def test_lab_hosts_lie_in_the_lab_subnet(name, settings):
    lab = yaml.safe_load((ROOT / f"inventories/{name}/group_vars/all/{settings}").read_text())
    subnet = ipaddress.ip_network(lab["lab_subnet"])
    hostvars = _inventory(name)["_meta"]["hostvars"]
    addresses = [ipaddress.ip_address(v["ansible_host"]) for v in hostvars.values()]
    assert all(a in subnet for a in addresses)
    assert len(set(addresses)) == len(addresses), "two lab hosts share an address"


@pytest.mark.parametrize("name", INVENTORIES)
def test_site_syntax(name):
    result = playbook(f"inventories/{name}", "--syntax-check", "site.yml", check=False)
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


def _dask_wiring(tmp_path, extra: dict) -> dict:
    """fleet_dask_clusters and fleet_dask_scheduler_addresses of a small inventory with a swarm."""
    from lab.inventory import resolve

    inventory = {
        "all": {
            "vars": {
                "fleet_environments": {
                    "production": {"branch": "production", "healthcheck_port": 8081},
                    "staging": {"branch": "main", "healthcheck_port": 8082, "dask": {"worker_replicas": 1}},
                },
                **extra,
            },
            "children": {
                "prefect_server": {"hosts": {"atd-prefect-01": {}}},
                "dask_swarm_managers": {"hosts": {"atd-swarm-01": {"ansible_host": "10.0.0.5"}}},
            },
        }
    }
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump(inventory))
    return resolve(path, ["fleet_dask_clusters", "fleet_dask_scheduler_addresses"])


def test_each_environment_gets_its_own_dask_cluster_on_its_own_ports(tmp_path):
    wiring = _dask_wiring(tmp_path, {})
    assert wiring["fleet_dask_clusters"] == {
        "production": {"scheduler_port": 8786, "dashboard_port": 8787},
        "staging": {"scheduler_port": 8788, "dashboard_port": 8789, "worker_replicas": 1},
    }
    assert wiring["fleet_dask_scheduler_addresses"] == {
        "production": "tls://10.0.0.5:8786",
        "staging": "tls://10.0.0.5:8788",
    }


def test_a_shared_dask_cluster_serves_every_environment(tmp_path):
    wiring = _dask_wiring(tmp_path, {"fleet_dask_shared_cluster": True, "fleet_dask_scheduler_host": "dask.internal"})
    assert wiring["fleet_dask_clusters"] == {"shared": {"scheduler_port": 8786, "dashboard_port": 8787}}
    assert wiring["fleet_dask_scheduler_addresses"] == {
        "production": "tls://dask.internal:8786",
        "staging": "tls://dask.internal:8786",
    }


def test_no_swarm_no_dask_address(tmp_path):
    from lab.inventory import resolve

    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump({"all": {"children": {"prefect_server": {"hosts": {"atd-prefect-01": {}}}}}}))
    assert resolve(path, ["fleet_dask_scheduler_addresses"])["fleet_dask_scheduler_addresses"] == {}


def test_a_prefect_cloud_inventory_points_every_client_at_the_workspace_with_its_key(tmp_path):
    """No prefect_server group, a workspace URL and a key: the workers' API URL is the workspace,
    their credential the key (a bearer token), and no basic auth is left over."""
    from lab.inventory import resolve

    url = "https://api.prefect.cloud/api/accounts/0f0e4e6a-46f7-4d6b-9a0e-2f1d6b7c8a90/workspaces/5b3c2d1e-0a9f-4e8d-b7c6-a5f4e3d2c1b0"
    inventory = {
        "all": {
            "vars": {
                "fleet_prefect_cloud_workspace_url": url + "/",
                "vault_prefect_cloud_api_key": "pnu_example",
                "vault_prefect_server_auth_string": "admin:left-over",
            },
            "children": {"prefect_workers": {"hosts": {"atd-data02": {"fleet_labels": ["atd-data02"]}}}},
        }
    }
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump(inventory))
    names = ["fleet_prefect_cloud", "fleet_prefect_api_url", "fleet_prefect_api_key", "fleet_prefect_api_auth_string"]
    assert resolve(path, names) == {
        "fleet_prefect_cloud": True,
        "fleet_prefect_api_url": url,
        "fleet_prefect_api_key": "pnu_example",
        "fleet_prefect_api_auth_string": "",
    }
    # The same inventory with a server instead: the server's URL and its basic auth, no key.
    inventory["all"]["vars"].pop("fleet_prefect_cloud_workspace_url")
    inventory["all"]["children"]["prefect_server"] = {"hosts": {"atd-prefect-01": {"ansible_host": "10.0.0.2"}}}
    path.write_text(yaml.safe_dump(inventory))
    assert resolve(path, names) == {
        "fleet_prefect_cloud": False,
        "fleet_prefect_api_url": "https://10.0.0.2:4200/api",
        "fleet_prefect_api_key": "",
        "fleet_prefect_api_auth_string": "admin:left-over",
    }


def test_on_prefect_cloud_an_environment_may_have_a_workspace_and_key_of_its_own(tmp_path):
    """production in a workspace of its own with its own key; staging keeps the fleet's."""
    from lab.inventory import resolve

    account = "https://api.prefect.cloud/api/accounts/0f0e4e6a-46f7-4d6b-9a0e-2f1d6b7c8a90"
    fleet, own = (
        account + "/workspaces/5b3c2d1e-0a9f-4e8d-b7c6-a5f4e3d2c1b0",
        account + "/workspaces/7d6c5b4a-3f2e-4d1c-8b0a-9f8e7d6c5b4a",
    )
    inventory = {
        "all": {
            "vars": {
                "fleet_prefect_cloud_workspace_url": fleet,
                "vault_prefect_cloud_api_key": "pnu_fleet",
                "vault_prefect_cloud_api_keys": {"production": "pnu_production"},
                "fleet_environments": {
                    "production": {"branch": "production", "healthcheck_port": 8081, "cloud_workspace_url": own + "/"},
                    "staging": {"branch": "main", "healthcheck_port": 8082},
                },
            },
            "children": {"prefect_workers": {"hosts": {"atd-data02": {"fleet_labels": ["atd-data02"]}}}},
        }
    }
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump(inventory))
    assert resolve(path, ["fleet_prefect_environment_apis"])["fleet_prefect_environment_apis"] == {
        "production": {"url": own, "auth_string": "", "api_key": "pnu_production", "ca_file": ""},
        "staging": {"url": fleet, "auth_string": "", "api_key": "pnu_fleet", "ca_file": ""},
    }
