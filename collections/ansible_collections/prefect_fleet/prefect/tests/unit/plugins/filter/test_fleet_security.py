"""The preflight's security rules, on recorded inputs."""

from __future__ import annotations

import pytest

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


def test_a_stated_reason_lets_a_server_run_open():
    assert f.api_credential_problems(TIERS, hostvars("", ""), "a one-host demo on a laptop, loopback only") == []
    assert f.api_credential_problems(TIERS, hostvars("", ""), "   ") != []
