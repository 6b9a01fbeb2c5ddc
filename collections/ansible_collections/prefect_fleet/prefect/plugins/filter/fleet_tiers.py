# Copyright: prefect-fleet maintainers
# SPDX-License-Identifier: Apache-2.0
"""Filters that route each environment to its Prefect server tier.

A server tier is an inventory group of Prefect server hosts with one credential of its own. The
environments of fleet_environments use the `prefect_server` group's hosts unless one names a tier
of its own (`fleet_environments.<env>.server: <group>`, a child group of `prefect_server`): the
default tier is then the `prefect_server` hosts that no named tier holds. A tier's credential is
its hosts' `fleet_prefect_api_auth_string` (group_vars/<tier> sets its vault value), its API its
one server's address and port, its database SQLite on its host or, on PostgreSQL, a database and
login role of its own on the prefect_database host. Plain Python, unit-tested on recorded inputs.
"""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

DEFAULT_TIER = "prefect_server"
GROUP_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _tier_name(settings):
    server = (settings or {}).get("server", DEFAULT_TIER) if isinstance(settings, dict) else DEFAULT_TIER
    return DEFAULT_TIER if server in (None, "") else server


def _named_tiers(environments):
    return sorted({str(_tier_name(s)) for s in (environments or {}).values()} - {DEFAULT_TIER})


def server_tiers(groups, hostvars, environments, default_port=4200):
    """The inventory's groups -> {tier: {hosts, environments, replicas, url}}, the default tier first.

    replicas are the tier's API processes, {name, host, address, port}, one per port of each host's
    fleet_prefect_server_ports. A named tier missing from the inventory has no hosts here (the
    preflight names it; environment_apis refuses to route to it)."""
    named = _named_tiers(environments)
    servers = list(groups.get(DEFAULT_TIER) or [])
    held = {host for tier in named for host in groups.get(tier) or []}
    tiers = {}
    for tier in [DEFAULT_TIER, *named]:
        hosts = [h for h in servers if h not in held] if tier == DEFAULT_TIER else list(groups.get(tier) or [])
        replicas = []
        for host in hosts:
            facts = hostvars.get(host) or {}
            for port in facts.get("fleet_prefect_server_ports") or [default_port]:
                replicas.append(
                    {
                        "name": f"{host}-{port}",
                        "host": host,
                        "address": facts.get("ansible_host", host),
                        "port": int(port),
                    }
                )
        first = replicas[0] if replicas else {"address": "", "port": default_port}
        tiers[tier] = {
            "hosts": hosts,
            "environments": [e for e, s in (environments or {}).items() if _tier_name(s) == tier],
            "replicas": replicas,
            # Its first replica's API: a single server's (an HA tier's clients use its load balancer),
            # always over TLS, at the TLS front of its host (docs/network.md).
            "url": f"https://{first['address']}:{first['port']}/api",
        }
    return tiers


def load_balancer_servers(replicas):
    """The load balancer's backend servers from a tier's replicas: each reached at its host's TLS
    front, whose certificate must name the replica's host (its inventory name)."""
    return [
        {"name": r["name"], "address": r["address"], "port": int(r["port"]), "tls": True, "verifyhost": r["host"]}
        for r in replicas or []
    ]


def tier_database_name(tier):
    """The PostgreSQL database, and its login role, of a tier on the prefect_database host: the
    default tier's is `prefect` (as before tiers), a named tier's its group's name."""
    return "prefect" if tier == DEFAULT_TIER else str(tier)


def _backend(hostvars, host):
    return str((hostvars.get(host) or {}).get("prefect_server_database_backend", "sqlite"))


def tier_databases(tiers, hostvars, ha=False):
    """[{tier, name, user, password, addresses, processes}]: a database and login role per tier on
    PostgreSQL, for the prefect_database host, with the addresses of the tier's hosts (pg_hba
    admits each to its own database only) and how many server processes connect (its API replicas,
    and in HA the default tier's services process)."""
    databases = []
    for tier, spec in tiers.items():
        hosts = spec["hosts"]
        if not hosts or _backend(hostvars, hosts[0]) != "postgresql":
            continue
        name = tier_database_name(tier)
        databases.append(
            {
                "tier": tier,
                "name": name,
                "user": name,
                "password": str(hostvars[hosts[0]].get("prefect_server_database_password", "")),
                "addresses": list(dict.fromkeys(str(r["address"]) for r in spec["replicas"])),
                "processes": len(spec["replicas"]) + (1 if ha and tier == DEFAULT_TIER else 0),
            }
        )
    return databases


def _cidr(address):
    if re.fullmatch(r"[0-9.]+", address):
        return address + "/32"
    return address + "/128" if ":" in address else address


def tier_postgresql(databases):
    """The postgresql role's inputs from tier_databases: {users, databases, hba_entries, processes}.
    Each tier's hosts may reach its own database as its own role, by password (scram-sha-256), over
    TLS (hostssl), and nothing else: the clear-text (host) entry of a fleet converged before TLS is
    removed. processes is how many server processes connect, for max_connections."""
    return {
        "users": [{"name": d["user"], "password": d["password"]} for d in databases],
        "databases": [{"name": d["name"], "owner": d["user"]} for d in databases],
        "hba_entries": [
            {
                "type": kind,
                "database": d["name"],
                "user": d["user"],
                "address": _cidr(a),
                "method": "scram-sha-256",
                "state": state,
            }
            for d in databases
            for a in d["addresses"]
            if a
            for kind, state in (("host", "absent"), ("hostssl", "present"))
        ],
        "processes": sum(d["processes"] for d in databases),
    }


def server_tier_of(tiers, host):
    """The tier whose hosts hold `host`; the default tier for any other host (workers, clients)."""
    for tier, spec in tiers.items():
        if tier != DEFAULT_TIER and host in spec["hosts"]:
            return tier
    return DEFAULT_TIER


def environment_apis(tiers, hostvars, default_api):
    """{environment: {url, auth_string, api_key, ca_file}}: how each environment's workers,
    registrar and flows reach its API. The default tier's environments get default_api (the
    server, its load balancer or Prefect Cloud); a named tier's get its server's URL and its hosts'
    credential, and the CA file of default_api (the fleet's CA, which certifies every server)."""
    apis = {}
    for tier, spec in tiers.items():
        for environment in spec["environments"]:
            if tier == DEFAULT_TIER:
                # The credential of the tier's hosts, not of the reading host's group variables
                # (a named tier's server that is also a worker host has its own tier's).
                auth = hostvars[spec["hosts"][0]]["fleet_prefect_api_auth_string"] if spec["hosts"] else None
                apis[environment] = {**default_api, **({"auth_string": auth} if auth is not None else {})}
                continue
            if not spec["hosts"]:
                # Never fall back to another tier's API: its credential is not this environment's.
                raise AnsibleFilterError(
                    f"fleet_environments.{environment}.server names {tier!r}, a group with no hosts in the inventory."
                )
            # A named tier is one server (server_tier_problems): its url is its API. Not read as
            # that host's fleet_prefect_api_url: ansible-core 2.19 does not template a variable
            # that uses `hostvars` when another host reads it through hostvars[...].
            apis[environment] = {
                "url": spec["url"],
                "auth_string": hostvars[spec["hosts"][0]]["fleet_prefect_api_auth_string"],
                "api_key": "",
                "ca_file": default_api.get("ca_file", ""),
            }
    return apis


CLOUD_WORKSPACE = re.compile(r"^https?://[^/\s]+/api/accounts/[0-9a-f-]{36}/workspaces/[0-9a-f-]{36}/?$")


def cloud_workspaces(apis, environments, keys, cloud):
    """On Prefect Cloud, each environment with a workspace of its own
    (fleet_environments.<env>.cloud_workspace_url) gets that workspace and its own key (keys, from
    vault_prefect_cloud_api_keys: {environment: key}); the others keep the fleet's workspace. A
    server fleet's apis are returned as they are (the preflight refuses workspaces there)."""
    if not cloud:
        return apis
    routed = dict(apis)
    for environment, settings in (environments or {}).items():
        url = (settings or {}).get("cloud_workspace_url") if isinstance(settings, dict) else None
        if not url:
            continue
        key = (keys or {}).get(environment)
        if not key:
            # Never fall back to the fleet's key: it opens another workspace.
            raise AnsibleFilterError(
                f"fleet_environments.{environment}.cloud_workspace_url is set, and vault_prefect_cloud_api_keys "
                f"has no key for {environment}."
            )
        # Prefect Cloud's certificate is a public CA's: no CA file of the fleet's.
        routed[environment] = {"url": str(url).rstrip("/"), "auth_string": "", "api_key": str(key), "ca_file": ""}
    return routed


def cloud_workspace_problems(environments, keys, cloud, default_url="", default_key=""):
    """Every rule the environments' own Prefect Cloud workspaces break, one message each; no
    message shows a key."""
    problems = []
    if not isinstance(environments, dict):
        return problems
    own = {
        e: s.get("cloud_workspace_url")
        for e, s in environments.items()
        if isinstance(s, dict) and s.get("cloud_workspace_url") not in (None, "")
    }
    keys = keys if isinstance(keys, dict) else {}
    if own and not cloud:
        return [
            f"fleet_environments set cloud_workspace_url ({', '.join(sorted(own))}) while the fleet runs its own "
            "Prefect server: a workspace of its own is for a fleet on Prefect Cloud (fleet_prefect_cloud_workspace_url)."
        ]
    for environment, url in own.items():
        if not isinstance(url, str) or not CLOUD_WORKSPACE.match(url):
            problems.append(
                f"fleet_environments.{environment}.cloud_workspace_url must be a workspace's API URL, "
                f"https://api.prefect.cloud/api/accounts/<account id>/workspaces/<workspace id>, got {url!r}."
            )
        if not keys.get(environment):
            problems.append(
                f"{environment} has a Prefect Cloud workspace of its own: vault_prefect_cloud_api_keys.{environment} "
                "must hold its API key."
            )
    stray = sorted(set(keys) - set(own))
    if stray:
        problems.append(
            f"vault_prefect_cloud_api_keys has keys for {', '.join(stray)}, which set no cloud_workspace_url: "
            "an environment without a workspace of its own uses the fleet's (vault_prefect_cloud_api_key)."
        )
    # One key per workspace: a key that opens two workspaces makes them one trust boundary. Each
    # environment's (key, workspace): its own, or the fleet's.
    opened = {}
    for environment in environments:
        if environment in own:
            key, url, holder = keys.get(environment), own[environment], environment
        else:
            key, url, holder = default_key, default_url, "the fleet's vault_prefect_cloud_api_key"
        if key:
            opened.setdefault(str(key), (holder, set()))[1].add(str(url).rstrip("/"))
    for holder, urls in opened.values():
        if len(urls) > 1:
            problems.append(
                f"one API key opens {len(urls)} workspaces (the key of {holder}): give each workspace its own key, "
                "or any environment's code could use the other's."
            )
    return problems


def api_groups(apis, environments):
    """[{url, auth_string, api_key, environments}]: the given environments grouped by the API they
    use, in order of first appearance (one call per API reads all its pools)."""
    groups = []
    for environment in environments:
        api = apis[environment]
        for group in groups:
            if (group["url"], group["auth_string"], group["api_key"]) == (
                api["url"],
                api["auth_string"],
                api["api_key"],
            ):
                group["environments"].append(environment)
                break
        else:
            groups.append({**api, "environments": [environment]})
    return groups


def merged_pool_readings(results):
    """The registered results of work_pool_info, one per API -> one reading {pools, ...}: the
    pools of all, or, when one API did not answer, that result (without `pools`) as it is."""
    results = [r for r in results if not r.get("skipped")]
    if not results:
        return {}
    for result in results:
        if "pools" not in result:
            return result
    merged = {key: value for key, value in results[0].items() if key != "pools"}
    merged["pools"] = {name: pool for result in results for name, pool in result["pools"].items()}
    return merged


def tier_objects(environments, all_environments, queues, secret_blocks, notifications):
    """One tier's share of the fleet's Prefect objects: the queues of its pools, the Secret blocks
    of its environments and the notifications on them, each narrowed to the tier's environments
    (one being removed is removed from every tier). What names no environment of the fleet stays
    in every share, for the prefect_objects role's checks to refuse."""
    ours = set(environments)
    ours.update(e for e in _mentioned(queues, secret_blocks, notifications) if e not in set(all_environments))
    kept = []
    for notification in notifications or []:
        mine = [e for e in notification.get("environments", ["production"]) if e in ours]
        if mine or notification.get("state", "present") == "absent":
            kept.append({**notification, "environments": mine})
    return {
        "queues": [q for q in queues or [] if q.get("pool") in ours],
        "secret_blocks": {e: s for e, s in (secret_blocks or {}).items() if e in ours},
        "notifications": kept,
    }


def _mentioned(queues, secret_blocks, notifications):
    yield from (q.get("pool") for q in queues or [])
    yield from (secret_blocks or {})
    for notification in notifications or []:
        yield from notification.get("environments", ["production"])


def _auth_of(hostvars, host):
    return str((hostvars.get(host) or {}).get("fleet_prefect_api_auth_string", ""))


def server_tier_problems(groups, hostvars, environments, cloud=False):
    """Every rule the environments' server tiers break, one message each (empty when valid)."""
    problems = []
    if not isinstance(environments, dict):
        return problems  # the worker role's preflight names a malformed fleet_environments
    for environment, settings in environments.items():
        server = _tier_name(settings)
        if not isinstance(server, str) or not GROUP_PATTERN.match(server):
            problems.append(
                f"fleet_environments.{environment}.server must be the name of an inventory group, got {server!r}."
            )
    named = [t for t in _named_tiers(environments) if GROUP_PATTERN.match(t)]
    if named and cloud:
        problems.append(
            f"fleet_environments name server tiers ({', '.join(named)}) while the fleet uses Prefect Cloud: "
            "a server tier is a group of Prefect server hosts."
        )
        return problems
    servers = set(groups.get(DEFAULT_TIER) or [])
    owner = {}
    for tier in named:
        hosts = list(groups.get(tier) or [])
        users = ", ".join(e for e, s in environments.items() if _tier_name(s) == tier)
        if not hosts:
            problems.append(f"the server tier {tier!r} of {users} has no hosts: add the group to the inventory.")
            continue
        outside = [h for h in hosts if h not in servers]
        if outside:
            problems.append(
                f"the server tier {tier!r} holds hosts outside {DEFAULT_TIER} ({', '.join(outside)}): "
                f"make {tier} a child group of {DEFAULT_TIER}, so that the server plays converge it."
            )
        for host in hosts:
            if host in owner:
                problems.append(f"{host} is in two server tiers, {owner[host]} and {tier}: a host serves one tier.")
            owner.setdefault(host, tier)
        for host in hosts:
            facts = hostvars.get(host) or {}
            ports = facts.get("fleet_prefect_server_ports") or []
            if len(hosts) > 1 or len(ports) > 1:
                problems.append(
                    f"the server tier {tier!r} has several API replicas: a named tier is one server in this release "
                    f"(the HA setup's database, Redis and load balancer serve {DEFAULT_TIER} alone)."
                )
                break
            if _backend(hostvars, host) != "postgresql":
                continue
            if not groups.get("prefect_database"):
                problems.append(
                    f"the server tier {tier!r} ({host}) uses PostgreSQL: the inventory needs a host in prefect_database, "
                    "which holds a database and a login role per tier."
                )
            name = tier.lower()
            if name in ("prefect", "postgres", "public") or name.startswith("pg_") or len(tier) > 63:
                problems.append(
                    f"the server tier {tier!r} uses PostgreSQL, where its group's name names its database and login "
                    "role: it must not be prefect (the default tier's), postgres or public, start with pg_, or "
                    "exceed 63 characters."
                )
    tiers = server_tiers(groups, hostvars, environments)
    if (
        named
        and any(_tier_name(s) == DEFAULT_TIER for s in environments.values())
        and servers
        and not tiers[DEFAULT_TIER]["hosts"]
    ):
        problems.append(
            f"every host of {DEFAULT_TIER} is in a named tier, so the environments without `server` have no server."
        )
    used = {t: spec for t, spec in tiers.items() if spec["hosts"] and spec["environments"]}
    credentials = {}
    for tier, spec in used.items():
        auths = {_auth_of(hostvars, h) for h in spec["hosts"]}
        if len(auths) > 1:
            problems.append(
                f"the hosts of the server tier {tier!r} disagree on its credential (vault_prefect_server_auth_string): "
                "set it once, in the tier group's variables."
            )
        credentials[tier] = sorted(auths)[0]
    if len(used) > 1:
        for tier, credential in credentials.items():
            if not credential:
                problems.append(
                    f"the server tier {tier!r} has no credential: with several tiers each needs its own "
                    "vault_prefect_server_auth_string, or any environment's code could use it."
                )
        seen = {}
        for tier, credential in credentials.items():
            if credential and credential in seen:
                problems.append(
                    f"the server tiers {seen[credential]!r} and {tier!r} share one credential: give each its own "
                    "vault_prefect_server_auth_string (group_vars/<tier>)."
                )
            seen.setdefault(credential, tier)
    passwords = {}
    for database in tier_databases(used, hostvars):
        if database["password"] and database["password"] in passwords:
            problems.append(
                f"the server tiers {passwords[database['password']]!r} and {database['tier']!r} share one database "
                "password: give each its own vault_prefect_server_database_password (group_vars/<tier>)."
            )
        passwords.setdefault(database["password"], database["tier"])
    places = {}
    for tier, spec in tiers.items():
        for replica in spec["replicas"]:
            place = f"{replica['address']}:{replica['port']}"
            if place in places and places[place] != tier:
                problems.append(f"the server tiers {places[place]!r} and {tier!r} both listen on {place}.")
            places.setdefault(place, tier)
    return problems


class FilterModule:
    def filters(self):
        return {
            "server_tiers": server_tiers,
            "server_tier_of": server_tier_of,
            "load_balancer_servers": load_balancer_servers,
            "tier_database_name": tier_database_name,
            "tier_databases": tier_databases,
            "tier_postgresql": tier_postgresql,
            "environment_apis": environment_apis,
            "api_groups": api_groups,
            "cloud_workspaces": cloud_workspaces,
            "cloud_workspace_problems": cloud_workspace_problems,
            "merged_pool_readings": merged_pool_readings,
            "tier_objects": tier_objects,
            "server_tier_problems": server_tier_problems,
        }
