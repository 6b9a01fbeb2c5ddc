"""Each invalid input makes prefect_worker fail with a message that names the problem, before any
file on the host changed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.molecule_checks import assert_rejected_without_change, other_messages, scenario_host

CONVERGE = Path(__file__).resolve().parent.parent / "converge.yml"
TWO_ENVS = {"production": {"branch": "production", "healthcheck_port": 8081}, "staging": {"branch": "main"}}

CASES = {
    "shared-healthcheck-port": (
        {"prefect_worker_environments": {**TWO_ENVS, "staging": {"branch": "main", "healthcheck_port": 8081}}},
        "each environment needs its own healthcheck_port on a host",
    ),
    "privileged-healthcheck-port": (
        {"prefect_worker_environments": {**TWO_ENVS, "staging": {"branch": "main", "healthcheck_port": 80}}},
        "each healthcheck_port must be between 1024 and 65535 (the workers run as unprivileged users",
    ),
    "service-user-name-too-long": (
        {
            "prefect_worker_environments": {
                "production-of-the-western-region": {"branch": "production", "healthcheck_port": 8081}
            }
        },
        "be at most 32 characters (useradd's limit); prefix 'prefect-', too long: prefect-production-of-the-western-region",
    ),
    "environment-not-a-pool-name": (
        {"prefect_worker_environments": {"Prod_Env": {"branch": "production", "healthcheck_port": 8081}}},
        "environment names must be valid pool names",
    ),
    "environment-without-branch": (
        {"prefect_worker_environments": {"production": {"healthcheck_port": 8081}}},
        "must map each environment to {branch, healthcheck_port}; without a branch: production",
    ),
    "no-environments": ({"prefect_worker_environments": {}}, "must name at least one environment"),
    "branch-not-a-branch-name": (
        {"prefect_worker_environments": {"production": {"branch": "feature..x", "healthcheck_port": 8081}}},
        "prefect_worker_environments.production.branch 'feature..x' is not a valid branch name",
    ),
    "label-not-a-queue-name": ({"prefect_worker_labels": ["ATD data02"]}, "must be valid queue names"),
    "label-listed-twice": (
        {"prefect_worker_labels": ["gis", "molecule-a", "gis"]},
        "lists a label more than once: gis",
    ),
    "no-labels": ({"prefect_worker_labels": []}, "must name at least one label"),
    "missing-repository": (
        {"prefect_worker_flows_repo": ""},
        "prefect_worker_flows_repo (fleet_flows_repo) must name the flows repository",
    ),
    "api-url-not-a-url": (
        {"prefect_worker_api_url": "atd-prefect-01:4200"},
        "prefect_worker_api_url (and each url of prefect_worker_environment_apis) must be an http(s) URL, got"
        " 'atd-prefect-01:4200'",
    ),
    "environment-api-not-a-url": (
        {
            "prefect_worker_environments": {**TWO_ENVS, "staging": {"branch": "main", "healthcheck_port": 8082}},
            "prefect_worker_environment_apis": {"staging": {"url": "staging-server:4200"}},
        },
        "an http(s) URL, got 'http://prefect-server:4200/api', 'staging-server:4200'",
    ),
    "sync-interval-too-short": ({"prefect_worker_sync_interval": 2}, "prefect_worker_sync_interval must be at least 5"),
    "no-concurrency": ({"prefect_worker_concurrency_limit": 0}, "prefect_worker_concurrency_limit must be at least 1"),
    "extra-env-not-a-variable-name": (
        {"prefect_worker_extra_env": {"lower": "x"}},
        "every key of prefect_worker_extra_env must be an upper-case environment variable name; these are not: lower",
    ),
    "extra-env-not-a-dict": (
        {"prefect_worker_extra_env": "FOO=1"},
        "prefect_worker_extra_env must be a mapping of environment variables to values, got 'FOO=1'",
    ),
    "malformed-auth-string": (
        {"prefect_worker_api_auth_string": "no-colon"},
        "The auth string of production (prefect_worker_api_auth_string or prefect_worker_environment_apis) must be"
        " empty or 'user:password'",
    ),
    "heartbeat-below-prefects-minimum": (
        {"prefect_worker_flow_heartbeat_seconds": 10},
        "prefect_worker_flow_heartbeat_seconds must be at least 30 (Prefect's minimum), got 10",
    ),
    "zero-drain-timeout": ({"prefect_worker_drain_timeout": 0}, "prefect_worker_drain_timeout must be at least 1"),
    "tmp-age-not-an-age": (
        {"prefect_worker_tmp_max_age": "ten days"},
        "prefect_worker_tmp_max_age must be a systemd-tmpfiles age such as 10d or 12h, got 'ten days'",
    ),
    "deploy-environment-not-run": (
        {"prefect_worker_deploy_environments": ["qa"]},
        "names environments it does not run: qa (it runs: production, staging)",
    ),
    "deployments-spec-outside-the-flows": (
        {"prefect_worker_deployments_spec": "../secrets.yml"},
        "prefect_worker_deployments_spec must be a .yml file's path inside the flows directory, got '../secrets.yml'",
    ),
    "schedules-active-not-a-bool": (
        {
            "prefect_worker_environments": {
                **TWO_ENVS,
                "staging": {"branch": "main", "healthcheck_port": 8082, "schedules_active": "sometimes"},
            }
        },
        "schedules_active must be true or false, in: staging",
    ),
    "activate-schedules-not-a-bool": (
        {
            "prefect_worker_environments": {
                **TWO_ENVS,
                "staging": {"branch": "main", "healthcheck_port": 8082, "branch_may_activate_schedules": "yes please"},
            }
        },
        "branch_may_activate_schedules must be true or false, in: staging",
    ),
    "job-variable-not-guarded": (
        {
            "prefect_worker_environments": {
                **TWO_ENVS,
                "staging": {
                    "branch": "main",
                    "healthcheck_port": 8082,
                    "branch_may_set_job_variables": ["command", "env"],
                },
            }
        },
        "branch_may_set_job_variables must list some of command, stream_output, working_dir",
    ),
    "job-variables-not-a-list": (
        {
            "prefect_worker_environments": {
                **TWO_ENVS,
                "staging": {"branch": "main", "healthcheck_port": 8082, "branch_may_set_job_variables": "command"},
            }
        },
        "branch_may_set_job_variables must list some of command, stream_output, working_dir",
    ),
    "cloud-key-with-a-server-url": (
        {"prefect_worker_api_key": "pnu_molecule"},
        "The Prefect Cloud API key of production (prefect_worker_api_key or prefect_worker_environment_apis) excludes"
        " an auth string, has no whitespace or quotes, and needs the URL to be a workspace URL",
    ),
    "removal-not-a-choice": (
        {"prefect_worker_deployments_removal": "archive"},
        "value of prefect_worker_deployments_removal must be one of: delete, pause, got: archive",
    ),
    "version-without-constraints": ({"prefect_worker_version": "3.0.99"}, "has no constraints file pinning"),
}


@pytest.fixture(scope="module")
def host():
    return scenario_host("prefect_workers")


@pytest.fixture(scope="module")
def remote_with_main_only(tmp_path_factory) -> str:
    """A repository on the controller with branch main only (the role checks branches from there)."""
    root = tmp_path_factory.mktemp("remote")
    bare, seed = root / "flows.git", root / "seed"
    git = ["git", "-c", "user.name=m", "-c", "user.email=m@invalid"]
    subprocess.run(["git", "init", "-q", "--bare", "--initial-branch=main", str(bare)], check=True)
    subprocess.run(["git", "init", "-q", "--initial-branch=main", str(seed)], check=True)
    subprocess.run([*git, "-C", str(seed), "commit", "-q", "--allow-empty", "-m", "seed"], check=True)
    subprocess.run(["git", "-C", str(seed), "push", "-q", str(bare), "main"], check=True)
    return f"file://{bare}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_invalid_input_fails_before_any_change(host, case):
    extra_vars, message = CASES[case]
    assert_rejected_without_change(host, CONVERGE, extra_vars, message, other_messages(CASES, case))
    assert not host.user("prefect").exists
    assert not host.user("prefect-production").exists


def test_a_branch_missing_on_the_remote_fails_before_any_change(host, remote_with_main_only):
    extra_vars = {"prefect_worker_flows_repo": remote_with_main_only, "prefect_worker_check_branches": True}
    assert_rejected_without_change(
        host, CONVERGE, extra_vars, "branch(es) production of prefect_worker_environments do not exist"
    )
    assert not host.user("prefect").exists
