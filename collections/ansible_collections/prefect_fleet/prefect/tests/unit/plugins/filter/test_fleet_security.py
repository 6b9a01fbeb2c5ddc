"""The preflight's security rules, on recorded inputs."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.prefect_fleet.prefect.plugins.filter import fleet_security as f

TIERS = {
    "prefect_server": {"hosts": ["atd-prefect-01"]},
    "production_server": {"hosts": ["atd-prefect-02"]},
    "empty_tier": {"hosts": []},
}
GOOD = "admin:Zt4kq9Lr2mVx8Pw3"


def hostvars(default, named):
    return {
        "atd-prefect-01": {"prefect_server_auth_string": default},
        "atd-prefect-02": {"prefect_server_auth_string": named},
    }


def test_a_credential_with_a_long_secret_on_every_tier_passes():
    assert f.api_credential_problems(TIERS, hostvars(GOOD, "ops:" + "x" * 16)) == []


@pytest.mark.parametrize(
    ("auth", "says"),
    [
        ("", "has no credential"),
        (None, "has no credential"),
        ("admin:change-me", "has the documentation's placeholder"),
        ("admin:change-me-to-a-long-random-string", "has the documentation's placeholder"),
        ("admin:short-secret-15", "has a credential whose secret is shorter than 16 characters"),
        (":" + "x" * 20, "has a credential whose secret is shorter than 16 characters"),
        ("x" * 20, "has a credential whose secret is shorter than 16 characters"),
    ],
)
def test_a_missing_placeholder_or_short_credential_is_refused_per_tier(auth, says):
    problems = f.api_credential_problems(TIERS, hostvars(GOOD, auth))
    assert len(problems) == 1
    assert problems[0].startswith("the server tier production_server (atd-prefect-02) " + says)
    assert "group_vars/production_server" in problems[0]
    secret = (auth or "").partition(":")[2]
    if secret:
        assert secret not in problems[0], "a message never shows the secret"


def test_every_failing_tier_is_named():
    problems = f.api_credential_problems(TIERS, hostvars("", "admin:change-me"))
    assert [p.split(" (")[0] for p in problems] == [
        "the server tier prefect_server",
        "the server tier production_server",
    ]


@pytest.mark.parametrize(
    ("facts", "open_"),
    [
        ({}, False),
        ({"haproxy_stats_address": "0.0.0.0"}, True),
        ({"haproxy_stats_address": "*", "haproxy_stats_auth": ""}, True),
        ({"haproxy_stats_address": "*", "haproxy_stats_auth": "stats:a-long-password"}, False),
        ({"haproxy_stats_address": "10.0.0.5", "haproxy_stats_enabled": False}, False),
        ({"haproxy_stats_address": "::1"}, False),
    ],
)
def test_a_stats_page_beyond_loopback_needs_a_password(facts, open_):
    problems = f.stats_page_problems(["atd-lb-01"], {"atd-lb-01": facts})
    assert bool(problems) == open_
    if open_:
        assert problems[0].startswith("HAProxy's stats page on atd-lb-01 would listen on")


def test_tls_pems_reads_a_cas_certificate_and_each_certificate_with_its_key(tmp_path):
    (tmp_path / "ca.crt").write_text("CA\n")
    (tmp_path / "client.crt").write_text("CERT\n\n")
    (tmp_path / "client.key").write_text("KEY")
    assert f.tls_pems(tmp_path, ["client"]) == {"ca": "CA\n", "client": "CERT\nKEY\n"}
    with pytest.raises(
        AnsibleFilterError, match=r"worker\.crt: No such file or directory \(playbooks/tls\.yml makes it\)"
    ):
        f.tls_pems(tmp_path, ["worker"])


def test_each_environments_dask_client_gets_its_own_clusters_ca_and_client_certificate_only():
    pems = {
        env: {"ca": f"{env}-ca", "scheduler": f"{env}-s", "worker": f"{env}-w", "client": f"{env}-c"}
        for env in ("production", "staging", "shared")
    }
    assert f.dask_client_tls(pems, ["production", "staging", "qa"]) == {
        "production": {"ca": "production-ca", "client": "production-c"},
        "staging": {"ca": "staging-ca", "client": "staging-c"},
    }
    assert f.dask_client_tls(pems, ["production", "staging"], shared=True) == {
        "production": {"ca": "shared-ca", "client": "shared-c"},
        "staging": {"ca": "shared-ca", "client": "shared-c"},
    }
    assert f.dask_client_tls({}, ["production"]) == {}


def test_a_stated_reason_lets_a_server_run_open():
    assert f.api_credential_problems(TIERS, hostvars("", ""), "a one-host demo on a laptop, loopback only") == []
    assert f.api_credential_problems(TIERS, hostvars("", ""), "   ") != []


@pytest.mark.parametrize(
    ("name", "value", "instead"),
    [
        ("fleet_pip_index_url", "https://ci:s3cret@pkgs.example.org/simple", "vault_fleet_pip_index_netrc"),
        ("fleet_pip_index_url", "https://token@pkgs.example.org/simple", "vault_fleet_pip_index_netrc"),
        ("prefect_worker_pip_extra_index_urls", ["https://a.example/simple", "https://u:p@b.example/simple"], "netrc"),
        ("dask_swarm_pip_index_url", "http://u:p@10.0.0.5:8080/simple", "vault_fleet_pip_index_netrc"),
        (
            "fleet_flows_repo",
            "https://x-access-token:ghp_abc@github.com/org/flows.git",
            "vault_prefect_worker_git_ssh_key",
        ),
        ("fleet_flows_repo", "ssh://git:hunter2@git.example/flows.git", "vault_prefect_worker_git_ssh_key"),
        (
            "fleet_prefect_cloud_workspace_url",
            "https://me:pw@api.prefect.cloud/api/accounts/a/workspaces/b",
            "vault_prefect_cloud_api_key",
        ),
    ],
)
def test_a_url_with_a_credential_is_refused_and_the_message_names_the_vault_variable_not_the_secret(
    name, value, instead
):
    (problem,) = f.url_credential_problems({name: value, "fleet_pip_index_url_other": ""}, "h1")
    assert problem.startswith(f"{name} holds a credential inside its URL (on h1)")
    assert instead in problem
    for secret in ("s3cret", "token@", "u:p", "ghp_abc", "hunter2", "me:pw"):
        assert secret not in problem


@pytest.mark.parametrize(
    "value",
    [
        "",
        None,
        "https://pkgs.example.org/simple",
        "file:///srv/wheels",
        "git@github.com:org/flows.git",
        "ssh://git@git.example:2222/flows.git",
        "/srv/git/flows.git",
        ["https://a.example/simple"],
        [],
    ],
)
def test_urls_without_a_credential_pass(value):
    names = [
        "fleet_pip_index_url",
        "fleet_pip_extra_index_urls",
        "fleet_flows_repo",
        "fleet_prefect_cloud_workspace_url",
    ]
    assert f.url_credential_problems(dict.fromkeys(names, value), "h") == []


def test_each_variable_that_has_one_is_named():
    problems = f.url_credential_problems(
        {"fleet_pip_index_url": "https://u:p@x/simple", "fleet_flows_repo": "https://t@x/f.git", "other": "https://x"},
        "h",
    )
    assert [p.split()[0] for p in problems] == ["fleet_flows_repo", "fleet_pip_index_url"]


def test_tls_authority_files_names_each_cas_files_then_each_certificates():
    assert f.tls_authority_files({"dask-staging": ["client"], "dask-production": ["scheduler"]}, "/ca") == [
        "/ca/dask-production",
        "/ca/dask-production/ca.key",
        "/ca/dask-production/ca.crt",
        "/ca/dask-production/scheduler.key",
        "/ca/dask-production/scheduler.crt",
        "/ca/dask-staging",
        "/ca/dask-staging/ca.key",
        "/ca/dask-staging/ca.crt",
        "/ca/dask-staging/client.key",
        "/ca/dask-staging/client.crt",
    ]
    assert f.tls_authority_files({}, "/ca") == []
