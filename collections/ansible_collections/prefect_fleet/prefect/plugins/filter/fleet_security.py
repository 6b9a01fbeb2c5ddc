# Copyright: prefect-fleet maintainers
# SPDX-License-Identifier: Apache-2.0
"""Filters for the preflight's security rules: what a fleet may not run with (docs/network.md).

Plain Python, unit-tested on recorded inputs. Messages name variables and hosts, never a secret.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from ansible.errors import AnsibleFilterError

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


LOOPBACK = ("127.0.0.1", "::1", "localhost")


def stats_page_problems(hosts, hostvars):
    """One message per host whose HAProxy stats page would listen beyond loopback without a
    password (haproxy_stats_address, _auth, _enabled, with the haproxy role's defaults)."""
    problems = []
    for host in hosts or []:
        facts = hostvars.get(host) or {}
        address = str(facts.get("haproxy_stats_address", "127.0.0.1"))
        enabled = facts.get("haproxy_stats_enabled", True)
        if str(enabled).lower() in ("false", "no", "0") or address in LOOPBACK or facts.get("haproxy_stats_auth"):
            continue
        problems.append(
            f"HAProxy's stats page on {host} would listen on {address} without a password: set "
            "vault_haproxy_stats_auth ('user:password'), or keep haproxy_stats_address on 127.0.0.1 (docs/network.md)."
        )
    return problems


# Where the credential goes instead, by what the URL variable names. A credential inside one would
# travel in `environment:` under become (sudo and the journal may log it), in the hosts' settings
# files and in the Dask image's Dockerfile.
INSTEAD = {
    "index": (
        "give the URL without it, and the credential in vault_fleet_pip_index_netrc (a netrc file: 'machine <host> "
        "login <user> password <secret>'), which the hosts and the Dask image's build read from a 0600 file"
    ),
    "repo": "use an SSH remote with its deploy key in vault_prefect_worker_git_ssh_key",
    "api": "give the workspace's URL alone; its key goes in vault_prefect_cloud_api_key",
}


def _instead(name):
    if "flows_repo" in name:
        return INSTEAD["repo"]
    if "cloud" in name:
        return INSTEAD["api"]
    return INSTEAD["index"]


def _has_credential(url):
    try:
        parts = urlsplit(str(url).strip())
    except ValueError:
        return False
    # An SSH remote's user (git@host:org/repo) is a name, not a secret: only user:password counts there.
    if parts.scheme in ("ssh", "git+ssh") or not parts.scheme:
        return parts.password is not None
    return parts.username is not None or parts.password is not None


def url_credential_problems(variables, host):
    """One message per variable of `variables` ({name: a URL or a list of URLs}, as `host` sees
    them) whose URL carries a credential (user:password@, or a token as the user), naming the
    vault variable to use instead. Never shows the URL."""
    problems = []
    for name, value in sorted((variables or {}).items()):
        urls = value if isinstance(value, (list, tuple)) else [value]
        if any(u and _has_credential(u) for u in urls):
            problems.append(f"{name} holds a credential inside its URL (on {host}): {_instead(name)}.")
    return problems


def tls_pems(directory, names):
    """A CA directory of tls_ca (tls_ca_authorities) on the controller -> {"ca": its certificate,
    name: the certificate, then the key, of each of `names`}, as PEM text: what a service that
    trusts only that CA is given. A missing file raises: the tls play makes them first."""
    base = Path(str(directory))
    try:
        pems = {"ca": (base / "ca.crt").read_text().strip() + "\n"}
        for name in names or []:
            pems[str(name)] = (
                (base / f"{name}.crt").read_text().strip() + "\n" + (base / f"{name}.key").read_text().strip() + "\n"
            )
    except OSError as error:
        raise AnsibleFilterError(f"{error.filename}: {error.strerror} (playbooks/tls.yml makes it)") from error
    return pems


def tls_authority_files(authorities, directory):
    """tls_ca_authorities ({CA: [certificate name, ...]}) and tls_ca_dir -> every path tls_ca makes
    for them on the controller: each CA's directory, key and certificate, then each certificate's
    key and certificate, in a stable order."""
    paths = []
    for name in sorted(authorities or {}):
        base = f"{directory}/{name}"
        paths += [base, f"{base}/ca.key", f"{base}/ca.crt"]
        for certificate in authorities[name] or []:
            paths += [f"{base}/{certificate}.key", f"{base}/{certificate}.crt"]
    return paths


def dask_client_tls(pems, environments, shared=False):
    """{cluster: tls_pems of its CA} -> {environment: {ca, client}}: what each environment's Dask
    clients are given, from its own cluster (the shared one when all share it); never a scheduler's
    or a worker's key."""
    out = {}
    for environment in environments or []:
        cluster = pems.get("shared" if shared else environment)
        if cluster:
            out[str(environment)] = {"ca": cluster["ca"], "client": cluster["client"]}
    return out


class FilterModule:
    def filters(self):
        return {
            "api_credential_problems": api_credential_problems,
            "stats_page_problems": stats_page_problems,
            "url_credential_problems": url_credential_problems,
            "tls_pems": tls_pems,
            "tls_authority_files": tls_authority_files,
            "dask_client_tls": dask_client_tls,
        }
