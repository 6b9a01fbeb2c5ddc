"""The filters that route each environment to its Prefect server tier, on recorded inputs."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.prefect_fleet.prefect.plugins.filter import fleet_tiers as f

ENVIRONMENTS = {
    "production": {"branch": "production"},
    "staging": {"branch": "main", "server": "staging_server"},
    "qa": {"branch": "qa", "server": "staging_server"},
}
GROUPS = {"prefect_server": ["atd-prefect-01", "atd-prefect-02"], "staging_server": ["atd-prefect-02"]}
PG = {"prefect_server_database_backend": "postgresql"}


def hostvars(**overrides):
    facts = {
        "atd-prefect-01": {
            "ansible_host": "10.0.0.10",
            "fleet_prefect_server_ports": ["4200"],
            "fleet_prefect_api_url": "http://10.0.0.10:4200/api",
            "fleet_prefect_api_auth_string": "admin:production-secret",
        },
        "atd-prefect-02": {
            "ansible_host": "10.0.0.11",
            "fleet_prefect_server_ports": ["4200"],
            "fleet_prefect_api_url": "http://10.0.0.11:4200/api",
            "fleet_prefect_api_auth_string": "admin:staging-secret",
        },
    }
    for host, values in overrides.items():
        facts[host] = {**facts.get(host, {}), **values}
    return facts


def test_an_environment_without_server_uses_the_prefect_server_hosts_that_no_named_tier_holds():
    tiers = f.server_tiers(GROUPS, hostvars(), ENVIRONMENTS)
    assert list(tiers) == ["prefect_server", "staging_server"]
    assert tiers["prefect_server"]["hosts"] == ["atd-prefect-01"]
    assert tiers["prefect_server"]["environments"] == ["production"]
    assert tiers["staging_server"] == {
        "hosts": ["atd-prefect-02"],
        "environments": ["staging", "qa"],
        "replicas": [{"name": "atd-prefect-02-4200", "host": "atd-prefect-02", "address": "10.0.0.11", "port": 4200}],
        "url": "https://10.0.0.11:4200/api",
    }


def test_one_tier_is_todays_layout_each_port_of_each_host_a_replica():
    groups = {"prefect_server": ["s1", "s2"]}
    facts = {"s1": {"fleet_prefect_server_ports": ["4200", "4201"]}, "s2": {}}
    tiers = f.server_tiers(groups, facts, {"production": {}, "staging": {}}, 4300)
    assert list(tiers) == ["prefect_server"]
    assert [(r["name"], r["address"], r["port"]) for r in tiers["prefect_server"]["replicas"]] == [
        ("s1-4200", "s1", 4200),
        ("s1-4201", "s1", 4201),
        ("s2-4300", "s2", 4300),
    ]
    assert f.server_tier_of(tiers, "s2") == "prefect_server"


def test_a_server_host_belongs_to_its_tier_every_other_host_to_the_default_one():
    tiers = f.server_tiers(GROUPS, hostvars(), ENVIRONMENTS)
    assert f.server_tier_of(tiers, "atd-prefect-02") == "staging_server"
    assert f.server_tier_of(tiers, "atd-prefect-01") == "prefect_server"
    assert f.server_tier_of(tiers, "atd-data02") == "prefect_server"


def test_each_environment_gets_its_tiers_url_and_credential_and_no_other():
    facts = hostvars()
    tiers = f.server_tiers(GROUPS, facts, ENVIRONMENTS)
    # As read on the staging tier's server host, whose own group variables hold staging's credential:
    # production's still comes from production's servers.
    ca = "/etc/prefect-fleet/tls/ca.crt"
    default = {"url": "https://lb:4200/api", "auth_string": "admin:staging-secret", "api_key": "", "ca_file": ca}
    apis = f.environment_apis(tiers, facts, default)
    production = {"url": "https://lb:4200/api", "auth_string": "admin:production-secret", "api_key": "", "ca_file": ca}
    assert apis["production"] == production
    # A named tier's server is certified by the fleet's CA too.
    staging = {"url": "https://10.0.0.11:4200/api", "auth_string": "admin:staging-secret", "api_key": "", "ca_file": ca}
    assert apis["staging"] == apis["qa"] == staging


def test_the_load_balancer_reaches_each_replica_through_its_hosts_tls_front():
    tiers = f.server_tiers({"prefect_server": ["s1", "s2"]}, {"s1": {"ansible_host": "10.0.0.1"}, "s2": {}}, {})
    assert f.load_balancer_servers(tiers["prefect_server"]["replicas"]) == [
        {"name": "s1-4200", "address": "10.0.0.1", "port": 4200, "tls": True, "verifyhost": "s1"},
        {"name": "s2-4200", "address": "s2", "port": 4200, "tls": True, "verifyhost": "s2"},
    ]


def test_an_environment_whose_tier_has_no_hosts_is_never_routed_to_another_tier():
    tiers = f.server_tiers({"prefect_server": ["atd-prefect-01"]}, hostvars(), ENVIRONMENTS)
    with pytest.raises(AnsibleFilterError, match=r"staging\.server names 'staging_server', a group with no hosts"):
        f.environment_apis(tiers, hostvars(), {"url": "u", "auth_string": "a", "api_key": ""})


def test_environments_are_grouped_by_the_api_they_use():
    apis = {
        "production": {"url": "u1", "auth_string": "a1", "api_key": ""},
        "staging": {"url": "u2", "auth_string": "a2", "api_key": ""},
        "qa": {"url": "u2", "auth_string": "a2", "api_key": ""},
    }
    groups = f.api_groups(apis, ["production", "qa", "staging"])
    assert [g["environments"] for g in groups] == [["production"], ["qa", "staging"]]
    assert groups[1]["url"] == "u2"


def test_the_readings_of_several_apis_merge_and_one_silent_api_is_reported_whole():
    one = {"pools": {"production": {"exists": True}}, "version": "3.8.8", "changed": False}
    two = {"pools": {"staging": {"exists": True}}, "version": "3.8.8", "changed": False}
    merged = f.merged_pool_readings([one, two])
    assert merged["pools"] == {"production": {"exists": True}, "staging": {"exists": True}}
    assert merged["version"] == "3.8.8"
    silent = {"failed": True, "msg": "connection refused"}
    assert f.merged_pool_readings([one, silent]) == silent
    assert f.merged_pool_readings([]) == {}


def test_a_tier_gets_the_objects_of_its_environments_and_unknown_names_stay_for_the_checks():
    queues = [{"pool": "production", "name": "etl"}, {"pool": "staging", "name": "etl"}, {"pool": "qa", "name": "gis"}]
    secrets = {"production": {"token": "p"}, "staging": {"token": "s"}, "prodution": {"typo": "x"}}
    notifications = [
        {"name": "ops", "url": "https://hooks.invalid/o"},  # production by default
        {"name": "dev", "url": "https://hooks.invalid/d", "environments": ["staging", "production"]},
        {"name": "old", "state": "absent", "environments": ["production"]},
    ]
    share = f.tier_objects(["staging", "qa"], ENVIRONMENTS, queues, secrets, notifications)
    assert share["queues"] == [{"pool": "staging", "name": "etl"}, {"pool": "qa", "name": "gis"}]
    assert share["secret_blocks"] == {"staging": {"token": "s"}, "prodution": {"typo": "x"}}
    assert [(n["name"], n["environments"]) for n in share["notifications"]] == [("dev", ["staging"]), ("old", [])]
    production = f.tier_objects(["production"], ENVIRONMENTS, queues, secrets, notifications)
    assert production["secret_blocks"] == {"production": {"token": "p"}, "prodution": {"typo": "x"}}
    assert [n["name"] for n in production["notifications"]] == ["ops", "dev", "old"]


def test_a_valid_layout_has_no_problems():
    assert f.server_tier_problems(GROUPS, hostvars(), ENVIRONMENTS) == []
    assert f.server_tier_problems({"prefect_server": ["s1"]}, {"s1": {}}, {"production": {}, "staging": {}}) == []


@pytest.mark.parametrize(
    ("groups", "facts", "environments", "cloud", "expected"),
    [
        (
            {"prefect_server": ["atd-prefect-01"]},
            hostvars(),
            ENVIRONMENTS,
            False,
            "the server tier 'staging_server' of staging, qa has no hosts: add the group to the inventory.",
        ),
        (
            {**GROUPS, "staging_server": []},
            hostvars(),
            ENVIRONMENTS,
            False,
            "the server tier 'staging_server' of staging, qa has no hosts",
        ),
        (
            {"prefect_server": ["atd-prefect-01"], "staging_server": ["atd-prefect-02"]},
            hostvars(),
            ENVIRONMENTS,
            False,
            "holds hosts outside prefect_server (atd-prefect-02): make staging_server a child group of prefect_server",
        ),
        (
            {**GROUPS, "staging_server": ["atd-prefect-02"], "qa_server": ["atd-prefect-02"]},
            hostvars(),
            {**ENVIRONMENTS, "qa": {"branch": "qa", "server": "qa_server"}},
            False,
            "atd-prefect-02 is in two server tiers, qa_server and staging_server",
        ),
        (
            {"prefect_server": ["atd-prefect-01", "atd-prefect-02", "s3"], "staging_server": ["atd-prefect-02", "s3"]},
            hostvars(s3={"fleet_prefect_api_auth_string": "admin:other"}),
            ENVIRONMENTS,
            False,
            "the hosts of the server tier 'staging_server' disagree on its credential",
        ),
        (
            GROUPS,
            hostvars(**{"atd-prefect-02": {"fleet_prefect_api_auth_string": "admin:production-secret"}}),
            ENVIRONMENTS,
            False,
            "the server tiers 'prefect_server' and 'staging_server' share one credential",
        ),
        (
            GROUPS,
            hostvars(**{"atd-prefect-02": {"fleet_prefect_api_auth_string": ""}}),
            ENVIRONMENTS,
            False,
            "the server tier 'staging_server' has no credential",
        ),
        (
            GROUPS,
            hostvars(**{"atd-prefect-02": {"ansible_host": "10.0.0.10"}}),
            ENVIRONMENTS,
            False,
            "the server tiers 'prefect_server' and 'staging_server' both listen on 10.0.0.10:4200.",
        ),
        (
            GROUPS,
            hostvars(**{"atd-prefect-02": {"fleet_prefect_server_ports": ["4200", "4201"]}}),
            ENVIRONMENTS,
            False,
            "the server tier 'staging_server' has several API replicas: a named tier is one server in this release",
        ),
        (
            GROUPS,
            hostvars(**{"atd-prefect-02": {"prefect_server_database_backend": "postgresql"}}),
            ENVIRONMENTS,
            False,
            "the server tier 'staging_server' (atd-prefect-02) uses PostgreSQL: the inventory needs a host in "
            "prefect_database",
        ),
        (
            {
                "prefect_server": ["atd-prefect-01", "atd-prefect-02"],
                "postgres": ["atd-prefect-02"],
                "prefect_database": ["d"],
            },
            hostvars(**{"atd-prefect-02": PG}),
            {**ENVIRONMENTS, "staging": {"branch": "main", "server": "postgres"}, "qa": {"branch": "qa"}},
            False,
            "the server tier 'postgres' uses PostgreSQL, where its group's name names its database and login role",
        ),
        (
            {**GROUPS, "prefect_database": ["atd-db-01"]},
            hostvars(
                **{
                    host: {**PG, "prefect_server_database_password": "one"}
                    for host in ("atd-prefect-01", "atd-prefect-02")
                }
            ),
            ENVIRONMENTS,
            False,
            "the server tiers 'prefect_server' and 'staging_server' share one database password",
        ),
        (
            {"prefect_server": ["atd-prefect-02"], "staging_server": ["atd-prefect-02"]},
            hostvars(),
            ENVIRONMENTS,
            False,
            "every host of prefect_server is in a named tier, so the environments without `server` have no server.",
        ),
        (
            {},
            {},
            ENVIRONMENTS,
            True,
            "fleet_environments name server tiers (staging_server) while the fleet uses Prefect Cloud",
        ),
        (
            GROUPS,
            hostvars(),
            {**ENVIRONMENTS, "qa": {"branch": "qa", "server": "qa server"}},
            False,
            "fleet_environments.qa.server must be the name of an inventory group, got 'qa server'.",
        ),
    ],
    ids=[
        "tier-group-missing",
        "tier-group-empty",
        "tier-outside-prefect-server",
        "host-in-two-tiers",
        "tier-hosts-disagree-on-credential",
        "two-tiers-one-credential",
        "tier-without-credential",
        "two-tiers-one-address-and-port",
        "named-tier-with-replicas",
        "named-tier-on-postgresql-without-database-host",
        "tier-named-as-a-postgresql-role",
        "two-tiers-one-database-password",
        "default-tier-emptied",
        "tiers-with-cloud",
        "server-not-a-group-name",
    ],
)
def test_each_broken_rule_is_named(groups, facts, environments, cloud, expected):
    problems = f.server_tier_problems(groups, facts, environments, cloud)
    assert any(expected in p for p in problems), problems


def test_each_tier_on_postgresql_has_a_database_and_role_of_its_own_open_to_its_hosts_alone():
    facts = hostvars(
        **{
            "atd-prefect-01": {**PG, "prefect_server_database_password": "db-production"},
            "atd-prefect-02": {**PG, "prefect_server_database_password": "db-staging"},
        }
    )
    tiers = f.server_tiers(GROUPS, facts, ENVIRONMENTS)
    assert f.tier_databases(tiers, facts) == [
        {
            "tier": "prefect_server",
            "name": "prefect",
            "user": "prefect",
            "password": "db-production",
            "addresses": ["10.0.0.10"],
            "processes": 1,
        },
        {
            "tier": "staging_server",
            "name": "staging_server",
            "user": "staging_server",
            "password": "db-staging",
            "addresses": ["10.0.0.11"],
            "processes": 1,
        },
    ]
    assert f.tier_database_name("prefect_server") == "prefect"
    assert f.tier_database_name("staging_server") == "staging_server"
    assert f.server_tier_problems({**GROUPS, "prefect_database": ["atd-db-01"]}, facts, ENVIRONMENTS) == []


def test_a_tier_on_sqlite_has_no_database_on_the_database_host_and_ha_counts_the_services_process():
    groups = {"prefect_server": ["s1", "s2"]}
    facts = {"s1": {**PG, "ansible_host": "10.0.0.1"}, "s2": {**PG, "ansible_host": "10.0.0.2"}}
    tiers = f.server_tiers(groups, facts, {"production": {}})
    (database,) = f.tier_databases(tiers, facts, ha=True)
    assert (database["addresses"], database["processes"]) == (["10.0.0.1", "10.0.0.2"], 3)
    sqlite = f.server_tiers(GROUPS, hostvars(), ENVIRONMENTS)
    assert f.tier_databases(sqlite, hostvars()) == []


def test_no_message_shows_a_credential():
    facts = hostvars(**{"atd-prefect-02": {"fleet_prefect_api_auth_string": "admin:production-secret"}})
    problems = f.server_tier_problems(GROUPS, facts, ENVIRONMENTS)
    assert problems
    assert not any("production-secret" in p for p in problems)


WORKSPACE = "https://api.prefect.cloud/api/accounts/{}/workspaces/{}"
FLEET_WS = WORKSPACE.format("a" * 8 + "-0000-4000-8000-" + "0" * 12, "b" * 8 + "-0000-4000-8000-" + "0" * 12)
PROD_WS = WORKSPACE.format("a" * 8 + "-0000-4000-8000-" + "0" * 12, "c" * 8 + "-0000-4000-8000-" + "0" * 12)
CLOUD_ENVIRONMENTS = {
    "production": {"branch": "production", "cloud_workspace_url": PROD_WS + "/"},
    "staging": {"branch": "main"},
}


def test_on_cloud_an_environment_with_a_workspace_of_its_own_gets_it_and_its_key():
    fleet = {"url": FLEET_WS, "auth_string": "", "api_key": "pnu_fleet"}
    apis = {"production": fleet, "staging": fleet}
    routed = f.cloud_workspaces(apis, CLOUD_ENVIRONMENTS, {"production": "pnu_production"}, True)
    # Prefect Cloud's certificate is a public CA's: no CA file of the fleet's.
    own = {"url": PROD_WS, "auth_string": "", "api_key": "pnu_production", "ca_file": ""}
    assert routed == {"production": own, "staging": fleet}
    assert [g["environments"] for g in f.api_groups(routed, ["production", "staging"])] == [["production"], ["staging"]]
    # A server fleet's routing is the tiers', untouched.
    assert f.cloud_workspaces(apis, CLOUD_ENVIRONMENTS, {}, False) == apis
    with pytest.raises(AnsibleFilterError, match="vault_prefect_cloud_api_keys has no key for production"):
        f.cloud_workspaces(apis, CLOUD_ENVIRONMENTS, {}, True)


@pytest.mark.parametrize(
    ("environments", "keys", "cloud", "expected"),
    [
        (CLOUD_ENVIRONMENTS, {"production": "pnu_production"}, False, "while the fleet runs its own Prefect server"),
        (
            {"production": {"cloud_workspace_url": "https://app.prefect.cloud/workspaces/x"}},
            {"production": "k"},
            True,
            "fleet_environments.production.cloud_workspace_url must be a workspace's API URL",
        ),
        (CLOUD_ENVIRONMENTS, {}, True, "vault_prefect_cloud_api_keys.production must hold its API key"),
        (
            CLOUD_ENVIRONMENTS,
            {"production": "pnu_production", "staging": "pnu_staging"},
            True,
            "vault_prefect_cloud_api_keys has keys for staging, which set no cloud_workspace_url",
        ),
        (CLOUD_ENVIRONMENTS, {"production": "pnu_fleet"}, True, "one API key opens 2 workspaces"),
    ],
    ids=[
        "workspace-on-a-server-fleet",
        "not-a-workspace-url",
        "workspace-without-key",
        "stray-key",
        "one-key-two-workspaces",
    ],
)
def test_each_broken_cloud_workspace_rule_is_named(environments, keys, cloud, expected):
    problems = f.cloud_workspace_problems(environments, keys, cloud, FLEET_WS, "pnu_fleet")
    assert any(expected in p for p in problems), problems
    assert not any("pnu_" in p for p in problems), "no message shows a key"


def test_workspaces_each_with_its_own_key_pass():
    assert (
        f.cloud_workspace_problems(CLOUD_ENVIRONMENTS, {"production": "pnu_production"}, True, FLEET_WS, "pnu_fleet")
        == []
    )


def test_each_tier_reaches_its_own_database_over_tls_only_and_the_clear_text_entry_goes():
    databases = [
        {
            "tier": "prefect_server",
            "name": "prefect",
            "user": "prefect",
            "password": "p1",
            "addresses": ["10.0.0.10"],
            "processes": 2,
        },
        {
            "tier": "staging_server",
            "name": "staging_server",
            "user": "staging_server",
            "password": "p2",
            "addresses": ["fd00::2"],
            "processes": 1,
        },
    ]
    out = f.tier_postgresql(databases)
    assert out["users"] == [{"name": "prefect", "password": "p1"}, {"name": "staging_server", "password": "p2"}]
    assert out["processes"] == 3
    entries = {(e["type"], e["database"], e["user"], e["address"], e["state"]) for e in out["hba_entries"]}
    assert entries == {
        ("host", "prefect", "prefect", "10.0.0.10/32", "absent"),
        ("hostssl", "prefect", "prefect", "10.0.0.10/32", "present"),
        ("host", "staging_server", "staging_server", "fd00::2/128", "absent"),
        ("hostssl", "staging_server", "staging_server", "fd00::2/128", "present"),
    }
    # The removal comes first: the entries are applied in order.
    assert [e["type"] for e in out["hba_entries"]][:2] == ["host", "hostssl"]
    assert {e["method"] for e in out["hba_entries"]} == {"scram-sha-256"}
