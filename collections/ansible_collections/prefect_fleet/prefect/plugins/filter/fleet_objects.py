# Copyright: prefect-fleet maintainers
# SPDX-License-Identifier: Apache-2.0
"""Filters that shape the fleet's inputs into the Prefect objects the prefect_objects role makes.

Data shaping and input checks are plain Python here, unit-tested on recorded inputs, rather than
Jinja loops in the role.
"""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

# Prefect's own rule for work pool and queue names as the fleet uses them (lower-case, DNS-like).
NAME_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# Prefect's rule for block names (raise_on_name_alphanumeric_dashes_only).
BLOCK_NAME_PATTERN = re.compile(r"^[a-z0-9-]+$")
# The final states of a flow run, which a notification may fire on.
FINAL_STATES = ("Completed", "Failed", "Crashed", "Cancelled", "TimedOut")
URL_PATTERN = re.compile(r"^https?://[^/\s]+")


def work_queues(pairs):
    """[(environments, labels), ...] (one pair a host) -> sorted unique [{pool, name}]: a queue per
    label of each host in each pool of that host's environments."""
    queues = set()
    for environments, labels in pairs:
        for pool in environments:
            for label in labels:
                queues.add((str(pool), str(label)))
    return [{"pool": pool, "name": name} for pool, name in sorted(queues)]


def secret_block_items(secret_blocks):
    """{environment: {name: value}} -> [{block: <environment>-<name>, value}], sorted by block."""
    if not isinstance(secret_blocks, dict):
        raise AnsibleFilterError("secret blocks must be a mapping of environments to {name: value}")
    items = []
    for environment, secrets in secret_blocks.items():
        for name, value in (secrets or {}).items():
            items.append({"block": f"{environment}-{name}", "value": value})
    return sorted(items, key=lambda item: item["block"])


def notification_items(notifications, webhook_results=None):
    """Each notification with its defaults filled in and, from the webhook_block task's registered
    results, the id of its Webhook block: what the automations need, without URL or headers."""
    block_ids = {}
    for result in (webhook_results or {}).get("results", []):
        block_ids[result["item"]["name"]] = (result.get("block") or {}).get("id", "")
    return [
        {
            "name": n["name"],
            "state": n.get("state", "present"),
            "environments": list(n.get("environments", ["production"])),
            "states": list(n.get("states", ["Failed", "Crashed"])),
            "block_id": block_ids.get(n["name"], ""),
        }
        for n in notifications
    ]


def _names(values):
    return ", ".join(str(v) for v in values)


def objects_problems(settings):
    """Every rule the prefect_objects role's inputs break, one message each (empty when valid).

    `settings` holds the role's variables without their prefix: environments, queues,
    secret_blocks, notifications, flow_heartbeat_seconds, zombie_after_seconds,
    pending_timeout_seconds, crashed_run_retries, api_url, api_auth_string, api_key.
    """
    problems = []
    environments = settings.get("environments") or {}
    if not environments:
        problems.append("prefect_objects_environments (fleet_environments) must name at least one environment.")
    bad = [e for e in environments if not NAME_PATTERN.match(str(e))]
    if bad:
        problems.append(
            "prefect_objects_environments: environment names must be valid pool names (lower-case letters, digits "
            f"and '-', at most 63); these are not: {_names(bad)}."
        )

    queues = settings.get("queues") or []
    bad = sorted({str(q.get("name")) for q in queues if not NAME_PATTERN.match(str(q.get("name", "")))})
    if bad:
        problems.append(
            f"prefect_objects_queues: queue names (host labels) must be valid queue names; not: {_names(bad)}."
        )
    bad = sorted({str(q.get("pool")) for q in queues if q.get("pool") not in environments})
    if bad:
        problems.append(f"prefect_objects_queues: queues name pools that are not environments: {_names(bad)}.")

    api_url = str(settings.get("api_url") or "")
    if not re.match(r"^https?://[^/\s]+", api_url):
        problems.append(f"prefect_objects_api_url must be an http(s) URL of the Prefect API, got '{api_url}'.")
    auth = str(settings.get("api_auth_string") or "")
    if auth and (":" not in auth or auth.startswith(":")):
        problems.append("prefect_objects_api_auth_string must be empty or 'user:password'.")
    if auth and settings.get("api_key"):
        problems.append("prefect_objects_api_key (Prefect Cloud) excludes prefect_objects_api_auth_string.")

    heartbeat = int(settings.get("flow_heartbeat_seconds", 30))
    zombie_after = int(settings.get("zombie_after_seconds", 90))
    if zombie_after < 2 * heartbeat:
        # One late heartbeat must not crash a live run.
        problems.append(
            "prefect_objects_zombie_after_seconds must be at least twice prefect_objects_flow_heartbeat_seconds "
            f"({2 * heartbeat}), got {zombie_after}."
        )
    pending = int(settings.get("pending_timeout_seconds", 300))
    if pending < 60:
        problems.append(f"prefect_objects_pending_timeout_seconds must be at least 60, got {pending}.")
    retries = int(settings.get("crashed_run_retries", 1))
    if not 0 <= retries <= 10:
        problems.append(f"prefect_objects_crashed_run_retries must be 0 to 10, got {retries}.")

    secret_blocks = settings.get("secret_blocks")
    if not isinstance(secret_blocks, dict):
        problems.append("prefect_objects_secret_blocks must map environments to {name: value}; not a mapping.")
        secret_blocks = {}
    bad = [e for e in secret_blocks if e not in environments]
    if bad:
        problems.append(
            f"prefect_objects_secret_blocks must map environments to {{name: value}}; these are not environments: {_names(bad)}."
        )
    names = sorted({n for s in secret_blocks.values() if isinstance(s, dict) for n in s})
    bad = [n for n in names if not BLOCK_NAME_PATTERN.match(str(n))]
    if bad:
        problems.append(
            "prefect_objects_secret_blocks: secret names must be valid Prefect block names (lower-case letters, digits "
            f"and dashes); these are not: {_names(bad)}."
        )

    notifications = settings.get("notifications") or []
    bad = []
    for index, n in enumerate(notifications, start=1):
        name = str(n.get("name", "")) if isinstance(n, dict) else ""
        url = str(n.get("url", "")) if isinstance(n, dict) else ""
        state = n.get("state", "present") if isinstance(n, dict) else "present"
        if not BLOCK_NAME_PATTERN.match(name) or (state != "absent" and not URL_PATTERN.match(url)):
            bad.append(name or f"#{index}")
    if bad:
        problems.append(
            "prefect_objects_notifications (fleet_notifications): each needs a name (lower-case letters, digits, "
            f"dashes) and, unless its state is absent, an http(s) url; these do not: {_names(bad)}."
        )
    wrong = [
        value
        for n in notifications
        if isinstance(n, dict)
        for value in [*(s for s in n.get("states", []) if s not in FINAL_STATES)]
        + [e for e in n.get("environments", []) if e not in environments]
    ]
    if wrong:
        problems.append(
            f"prefect_objects_notifications (fleet_notifications): states must be among {_names(FINAL_STATES)} and "
            f"environments among {_names(environments)}; not: {_names(wrong)}."
        )
    return problems


class FilterModule:
    def filters(self):
        return {
            "work_queues": work_queues,
            "secret_block_items": secret_block_items,
            "notification_items": notification_items,
            "objects_problems": objects_problems,
        }
