"""site.yml's first play rejects a bad inventory before any host is touched."""

from __future__ import annotations

import pytest
import yaml

from lab.ansible import playbook


def _preflight(tmp_path, inventory: dict) -> tuple[int, str]:
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump(inventory))
    result = playbook(path, "playbooks/preflight.yml", check=False)
    return result.returncode, " ".join((result.stdout + result.stderr).split())


# What every server fleet needs: a credential with a long secret, and where its TLS CA lives.
FLEET_VARS = {"vault_prefect_server_auth_string": "admin:fleet-0123456789ab", "fleet_tls_ca_dir": "/srv/fleet-ca"}


def _inventory(servers: dict, fleet_vars: dict | None = None, **groups: dict) -> dict:
    children = {"prefect_server": {"hosts": servers}}
    children.update({name: {"hosts": hosts} for name, hosts in groups.items()})
    return {"all": {"vars": {**FLEET_VARS, **(fleet_vars or {})}, "children": children}}


# An HA tier's parts (each bad case below leaves one out or breaks one).
PG = {"fleet_prefect_database_backend": "postgresql", "vault_prefect_redis_password": "a-long-redis-password-0123"}
DB = {"atd-db-01": {}}
HA_SERVERS = {"atd-prefect-01": PG, "atd-prefect-02": PG}
HA_PARTS = {"prefect_redis": {"atd-redis-01": {}}, "prefect_load_balancer": {"atd-lb-01": {}}}


CLOUD_URL = (
    "https://api.prefect.cloud/api/accounts/0f0e4e6a-46f7-4d6b-9a0e-2f1d6b7c8a90"
    "/workspaces/5b3c2d1e-0a9f-4e8d-b7c6-a5f4e3d2c1b0"
)


def _cloud(url: str, key: str = "pnu_example0123456789", servers: dict | None = None) -> dict:
    """Workers on Prefect Cloud: no prefect_server group (unless given), a workspace URL and a key."""
    inventory = _inventory(servers or {}, prefect_workers={"atd-data02": {"fleet_labels": ["atd-data02"]}})
    if not servers:
        del inventory["all"]["children"]["prefect_server"]
    inventory["all"]["vars"] = {"fleet_prefect_cloud_workspace_url": url, "vault_prefect_cloud_api_key": key}
    return inventory


def test_a_prefect_cloud_inventory_passes(tmp_path):
    rc, out = _preflight(tmp_path, _cloud(CLOUD_URL))
    assert rc == 0, out


def test_a_good_inventory_passes(tmp_path):
    rc, out = _preflight(tmp_path, _inventory({"atd-prefect-01": {}}, prefect_workers={"atd-data02": {}}))
    assert rc == 0, out


def test_a_server_without_credential_passes_when_the_inventory_says_why(tmp_path):
    open_server = {
        "vault_prefect_server_auth_string": "",
        "fleet_prefect_api_open_unsafe_reason": "a demo on one laptop",
    }
    rc, out = _preflight(tmp_path, _inventory({"atd-prefect-01": {}}, open_server, prefect_workers={"atd-data02": {}}))
    assert rc == 0, out


@pytest.mark.parametrize(
    "settings",
    [
        {"fleet_flows_repo_known_hosts": "forge.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyExampleKey"},
        {"fleet_flows_repo_host_key_unpinned_unsafe_reason": "a throwaway forge on a laptop"},
    ],
    ids=["pinned", "unpinned-with-a-reason"],
)
def test_an_ssh_remote_passes_with_its_host_key_pinned_or_a_reason(tmp_path, settings):
    repo = {"fleet_flows_repo": "ssh://git@forge.example/srv/flows.git", **settings}
    rc, out = _preflight(tmp_path, _inventory({"atd-prefect-01": {}}, repo, prefect_workers={"atd-data02": {}}))
    assert rc == 0, out


def test_a_good_ha_inventory_passes(tmp_path):
    rc, out = _preflight(tmp_path, _inventory(HA_SERVERS, prefect_database=DB, **HA_PARTS))
    assert rc == 0, out


@pytest.mark.parametrize(
    ("inventory", "message"),
    [
        (_inventory({}), "must put at least one host in group prefect_server (one for a single server, several"),
        (
            _cloud(CLOUD_URL, servers={"atd-prefect-01": {}}),
            "The inventory has hosts in prefect_server and a Prefect Cloud workspace",
        ),
        (
            _cloud("https://api.prefect.cloud/api/accounts/abc/workspaces/def"),
            "fleet_prefect_cloud_workspace_url must be a workspace's API URL",
        ),
        (_cloud("https://app.prefect.cloud/account/x"), "got 'https://app.prefect.cloud/account/x'"),
        (_cloud(CLOUD_URL, key=""), "and vault_prefect_cloud_api_key must hold the API key"),
        (
            _inventory({"atd-prefect-01": {}, "atd-prefect-02": {}}, **HA_PARTS),
            "The inventory has 2 API replicas (atd-prefect-01-4200, atd-prefect-02-4200) on SQLite",
        ),
        (
            _inventory({"atd-prefect-01": {"fleet_prefect_server_ports": [4200, 4201]}}, **HA_PARTS),
            "The inventory has 2 API replicas (atd-prefect-01-4200, atd-prefect-01-4201) on SQLite",
        ),
        (
            _inventory(HA_SERVERS, prefect_database=DB, prefect_load_balancer={"atd-lb-01": {}}),
            "which need exactly one host in group prefect_redis (Redis, for messaging, leases and the task queue); found 0",
        ),
        (
            _inventory(HA_SERVERS, prefect_database=DB, prefect_redis={"atd-redis-01": {}}),
            "which need exactly one host in group prefect_load_balancer (HAProxy, in front of the replicas); found 0",
        ),
        (
            _inventory(
                {"atd-prefect-01": {**PG, "vault_prefect_redis_password": ""}, "atd-prefect-02": PG},
                prefect_database=DB,
                **HA_PARTS,
            ),
            "An HA server tier needs vault_prefect_redis_password",
        ),
        (
            _inventory(
                {"atd-prefect-01": {**PG, "fleet_prefect_server_ports": [4200, 4200]}}, prefect_database=DB, **HA_PARTS
            ),
            "Two API replicas on atd-prefect-01 share a port: fleet_prefect_server_ports lists 4200 more than once",
        ),
        (_inventory({"ATD_Prefect": {}}), "Host name 'ATD_Prefect' must be a lower-case DNS label"),
        (
            _inventory({"atd-prefect-01": {"fleet_prefect_database_backend": "postgresql"}}),
            "needs exactly one host in group prefect_database; found none",
        ),
        (
            _inventory({"atd-prefect-01": {}}, prefect_database={"atd-db-01": {}, "atd-db-02": {}}),
            "at most one host in group prefect_database; found 2: atd-db-01, atd-db-02",
        ),
        (
            _inventory({"atd-prefect-01": {}}, dask_swarm_workers={"atd-swarm-02": {}}),
            "puts atd-swarm-02 in dask_swarm_workers but no host in dask_swarm_managers",
        ),
        (
            _inventory({"atd-prefect-01": {}}, {"vault_prefect_server_auth_string": ""}),
            "the server tier prefect_server (atd-prefect-01) has no credential",
        ),
        (
            _inventory({"atd-prefect-01": {}}, {"vault_prefect_server_auth_string": "admin:change-me"}),
            "the server tier prefect_server (atd-prefect-01) has the documentation's placeholder",
        ),
        (
            _inventory({"atd-prefect-01": {}}, {"vault_prefect_server_auth_string": "admin:fifteen-chars"}),
            "has a credential whose secret is shorter than 16 characters",
        ),
        (
            _inventory({"atd-prefect-01": {}}, {"fleet_tls_ca_dir": ""}),
            "A fleet with its own Prefect server serves its API over TLS only: set fleet_tls_ca_dir",
        ),
        (
            _inventory({"atd-prefect-01": {"haproxy_stats_address": "0.0.0.0"}}),
            "HAProxy's stats page on atd-prefect-01 would listen on 0.0.0.0 without a password",
        ),
        (
            _inventory(
                {"atd-prefect-01": {}},
                {"fleet_flows_repo": "ssh://git@forge.example/srv/flows.git"},
                prefect_workers={"atd-data02": {}},
            ),
            "is reached over SSH, and fleet_flows_repo_known_hosts does not pin its host key",
        ),
        (
            _inventory(
                {"atd-prefect-01": {}},
                {"fleet_flows_repo": "git@forge.example:data/flows.git"},
                prefect_workers={"atd-data02": {}},
            ),
            "fleet_flows_repo (git@forge.example:data/flows.git) is reached over SSH",
        ),
        (
            _inventory(
                {"atd-prefect-01": {}}, {"fleet_pip_index_url": "https://ci:Secret-Token-42@pkgs.example/simple"}
            ),
            "fleet_pip_index_url holds a credential inside its URL (on atd-prefect-01): give the URL "
            "without it, and the credential in vault_fleet_pip_index_netrc",
        ),
        (
            _inventory(
                {"atd-prefect-01": {}},
                prefect_workers={"atd-data02": {"fleet_flows_repo": "https://oauth2:glpat-x@forge.example/flows.git"}},
            ),
            "fleet_flows_repo holds a credential inside its URL (on atd-data02): use an SSH remote",
        ),
    ],
    ids=[
        "no-server",
        "server-and-cloud",
        "cloud-url-ids-not-uuids",
        "cloud-url-of-the-ui",
        "cloud-without-key",
        "two-servers-on-sqlite",
        "two-replicas-on-one-host-on-sqlite",
        "ha-without-redis",
        "ha-without-load-balancer",
        "ha-without-redis-password",
        "two-replicas-share-a-port",
        "bad-host-name",
        "postgresql-without-database-host",
        "two-database-hosts",
        "swarm-workers-without-manager",
        "no-credential",
        "placeholder-credential",
        "short-credential",
        "no-tls-ca",
        "stats-page-open-without-password",
        "ssh-remote-host-key-not-pinned",
        "scp-like-remote-host-key-not-pinned",
        "index-url-with-credential",
        "flows-repo-url-with-token-on-one-host",
    ],
)
def test_a_bad_inventory_is_rejected(tmp_path, inventory, message):
    rc, out = _preflight(tmp_path, inventory)
    assert rc != 0
    assert message in out
    # A message names a credential's variable, never its value.
    for secret in ("Secret-Token-42", "glpat-x"):
        assert secret not in out


def _tiered(staging_auth: str) -> dict:
    """Production on the default tier (HA), staging on a tier of its own with staging_auth."""
    inventory = _inventory(HA_SERVERS, prefect_database=DB, **HA_PARTS)
    children = inventory["all"]["children"]
    children["prefect_server"]["children"] = {"staging_server": {}}
    children["staging_server"] = {
        "hosts": {"atd-prefect-03": {}},
        "vars": {"vault_prefect_server_auth_string": staging_auth, "fleet_prefect_database_backend": "sqlite"},
    }
    inventory["all"]["vars"] |= {
        "vault_prefect_server_auth_string": "admin:production-0123456789",
        "fleet_environments": {
            "production": {"branch": "production", "healthcheck_port": 8081},
            "staging": {"branch": "main", "healthcheck_port": 8082, "server": "staging_server"},
        },
    }
    return inventory


PRODUCTION_WORKSPACE = (
    "https://api.prefect.cloud/api/accounts/0f0e4e6a-46f7-4d6b-9a0e-2f1d6b7c8a90"
    "/workspaces/7d6c5b4a-3f2e-4d1c-8b0a-9f8e7d6c5b4a"
)


def _workspaces(production_key: str) -> dict:
    """Staging in the fleet's workspace, production in one of its own with production_key."""
    inventory = _cloud(CLOUD_URL)
    inventory["all"]["vars"].update(
        {
            "fleet_environments": {
                "production": {
                    "branch": "production",
                    "healthcheck_port": 8081,
                    "cloud_workspace_url": PRODUCTION_WORKSPACE,
                },
                "staging": {"branch": "main", "healthcheck_port": 8082},
            },
            "vault_prefect_cloud_api_keys": {"production": production_key},
        }
    )
    return inventory


@pytest.mark.parametrize(
    "inventory",
    [_tiered("admin:staging-0123456789"), _workspaces("pnu_production0123456789")],
    ids=["server-tier-of-its-own", "cloud-workspace-of-its-own"],
)
def test_an_environment_behind_an_api_of_its_own_passes(tmp_path, inventory):
    rc, out = _preflight(tmp_path, inventory)
    assert rc == 0, out


# Every other rule of the tiers and workspaces: the fleet_tiers filters' unit tests, one case each.
@pytest.mark.parametrize(
    ("inventory", "secret", "message"),
    [
        (
            _tiered("admin:production-0123456789"),
            "production-0123456789",
            "the server tiers 'prefect_server' and 'staging_server' share one credential",
        ),
        (_workspaces("pnu_example0123456789"), "pnu_example0123456789", "one API key opens 2 workspaces"),
    ],
    ids=["two-tiers-one-credential", "two-workspaces-one-key"],
)
def test_two_apis_behind_one_secret_are_rejected_without_showing_it(tmp_path, inventory, secret, message):
    rc, out = _preflight(tmp_path, inventory)
    assert rc != 0
    assert message in out
    assert secret not in out
