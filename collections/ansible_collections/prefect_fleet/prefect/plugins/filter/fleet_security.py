# Copyright: prefect-fleet maintainers
# SPDX-License-Identifier: Apache-2.0
"""Filters for the preflight's security rules: what a fleet may not run with (docs/network.md).

Plain Python, unit-tested on recorded inputs. Messages name variables and hosts, never a secret.
"""

from __future__ import annotations

# The shortest secret (the part after "user:") a server's credential may have.
MIN_SECRET = 16
# Values the documentation shows as examples: never a real credential.
PLACEHOLDERS = ("change-me",)


def api_credential_problems(tiers, hostvars, open_reason=""):
    """One message per server tier whose credential (prefect_server_auth_string of its hosts, from
    vault_prefect_server_auth_string) is empty, a placeholder, or has a secret shorter than
    MIN_SECRET characters. fleet_prefect_api_open_unsafe_reason (open_reason) lets every tier run
    as it is: the inventory says why, in its own words."""
    if str(open_reason or "").strip():
        return []
    problems = []
    for tier, spec in (tiers or {}).items():
        hosts = spec.get("hosts") or []
        if not hosts:
            continue
        auth = str((hostvars.get(hosts[0]) or {}).get("prefect_server_auth_string") or "")
        where = f"the server tier {tier} ({', '.join(hosts)})"
        user, _colon, secret = auth.partition(":")
        if not auth:
            reason = "has no credential: anyone who reaches its API may do anything in it"
        elif any(p in auth for p in PLACEHOLDERS):
            reason = "has the documentation's placeholder as its credential"
        elif not user or len(secret) < MIN_SECRET:
            reason = f"has a credential whose secret is shorter than {MIN_SECRET} characters"
        else:
            continue
        problems.append(
            f"{where} {reason}. Set vault_prefect_server_auth_string (in group_vars/{tier} for a named tier) to "
            f"'user:secret' with a random secret of {MIN_SECRET} characters or more; or, only for a server no "
            "one else can reach, say why in fleet_prefect_api_open_unsafe_reason (docs/network.md: unsafe)."
        )
    return problems


class FilterModule:
    def filters(self):
        return {"api_credential_problems": api_credential_problems}
