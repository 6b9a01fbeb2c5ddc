#!/usr/bin/python
# Copyright: prefect-fleet maintainers
# SPDX-License-Identifier: Apache-2.0
"""Ansible module: read what a fleet's status needs from Prefect 3 work pools."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: work_pool_info
short_description: Read workers, queues and flow runs of Prefect 3 work pools
description:
  - Reads, for each work pool named, its workers (status and last heartbeat), its queues (status,
    paused, scheduled runs) and its flow runs in flight (Pending or Running, with the host each
    runs on when its worker records it, and its pid); and the server's version.
  - Changes nothing; runs in check mode too.
options:
  pools:
    description: Work pools to read. A pool that does not exist is reported with C(exists=false).
    type: list
    elements: str
    required: true
  in_flight_limit:
    description: Most runs in flight read per pool (the API pages at 200).
    type: int
    default: 200
extends_documentation_fragment:
  - prefect_fleet.prefect.api
author:
  - prefect-fleet maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Read the production pool
  prefect_fleet.prefect.work_pool_info:
    api_url: "{{ fleet_prefect_api_url }}"
    pools: [production]
  register: info

- name: Wait until this host's production worker is ONLINE
  prefect_fleet.prefect.work_pool_info:
    api_url: "{{ fleet_prefect_api_url }}"
    pools: [production]
  register: info
  until: >-
    info.pools.production.workers | selectattr('name', 'equalto', inventory_hostname ~ '-production')
    | selectattr('status', 'equalto', 'ONLINE') | list | length == 1
  retries: 30
  delay: 2
"""

RETURN = r"""
version:
  description: The server's Prefect version.
  returned: always
  type: str
pools:
  description:
    - Per pool name, C(exists), C(paused), C(workers) (list of C(name), C(status),
      C(last_heartbeat_time)), C(queues) (per queue name, C(status), C(paused) and C(scheduled),
      the runs Scheduled or Late in it), and C(in_flight) (list of C(id), C(name), C(state),
      C(queue), C(host), C(pid)).
  returned: always
  type: dict
"""

from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.prefect_fleet.prefect.plugins.module_utils.api import (
    API_ARGUMENT_SPEC,
    PrefectAPI,
    PrefectAPIError,
    path_segment,
)

IN_FLIGHT = ["PENDING", "RUNNING"]


def host_and_pid(infrastructure_pid):
    """Prefect 3.8's process worker records the bare pid; older ones "<hostname>:<pid>"; other
    workers other things (then neither is known)."""
    value = str(infrastructure_pid or "")
    if value.isdigit():
        return "", value
    host, _separator, pid = value.rpartition(":")
    return (host, pid) if host and pid.isdigit() else ("", "")


# Requests in flight at once: a status reads every pool while the server is busy with the fleet,
# and each request waits mostly on the server, so they wait side by side, not one after the other.
CONCURRENCY = 8


def read_pools(api, names, limit):
    """The server's version, and per pool name what RETURN describes."""
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as executor:
        version = executor.submit(api.request, "GET", "/admin/version")
        first = {}
        for name in names:
            pool_path = "/work_pools/" + path_segment(name)
            first[name] = {
                "pool": executor.submit(api.get_or_none, pool_path),
                "workers": executor.submit(api.request, "POST", pool_path + "/workers/filter", {"limit": 200}),
                "queues": executor.submit(api.request, "POST", pool_path + "/queues/filter", {"limit": 200}),
                "runs": executor.submit(
                    api.request,
                    "POST",
                    "/flow_runs/filter",
                    runs_of_pool(name, IN_FLIGHT, limit=limit, sort="START_TIME_ASC"),
                ),
            }
        pools = {}
        counts = {}
        for name, calls in first.items():
            pool = calls["pool"].result()
            if pool is None:
                # The other calls about a pool that does not exist answered 404: nothing to read.
                for call in calls.values():
                    call.exception()
                pools[name] = {"exists": False, "paused": False, "workers": [], "queues": {}, "in_flight": []}
                continue
            pools[name] = {
                "exists": True,
                "paused": pool.get("is_paused", False),
                "workers": [
                    {
                        "name": worker["name"],
                        "status": worker.get("status"),
                        "last_heartbeat_time": worker.get("last_heartbeat_time"),
                    }
                    for worker in calls["workers"].result()
                ],
                "queues": {},
                "in_flight": [in_flight(run) for run in calls["runs"].result()],
            }
            for queue in calls["queues"].result():
                pools[name]["queues"][queue["name"]] = {
                    "status": queue.get("status"),
                    "paused": queue.get("is_paused", False),
                }
                counts[(name, queue["name"])] = executor.submit(
                    api.request,
                    "POST",
                    "/flow_runs/count",
                    runs_of_pool(name, ["SCHEDULED"], work_pool_queues={"name": {"any_": [queue["name"]]}}),
                )
        for (name, queue), count in counts.items():
            pools[name]["queues"][queue]["scheduled"] = count.result()
        return version.result(), pools


def runs_of_pool(name, states, **more):
    """The body of a flow-run filter or count: the pool's runs in one of `states`, and `more`."""
    return dict({"work_pools": {"name": {"any_": [name]}}, "flow_runs": {"state": {"type": {"any_": states}}}}, **more)


def in_flight(run):
    host, pid = host_and_pid(run.get("infrastructure_pid"))
    return {
        "id": run["id"],
        "name": run.get("name"),
        "state": (run.get("state") or {}).get("type"),
        "queue": run.get("work_queue_name"),
        "host": host,
        "pid": pid,
    }


def main():
    argument_spec = dict(
        API_ARGUMENT_SPEC,
        pools={"type": "list", "elements": "str", "required": True},
        in_flight_limit={"type": "int", "default": 200},
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    if not 1 <= params["in_flight_limit"] <= 200:
        module.fail_json(msg="in_flight_limit must be 1 to 200, got {}".format(params["in_flight_limit"]))
    api = PrefectAPI(module)
    try:
        version, pools = read_pools(api, params["pools"], params["in_flight_limit"])
    except PrefectAPIError as error:
        module.fail_json(msg=str(error))
    module.exit_json(changed=False, version=version, pools=pools)


if __name__ == "__main__":
    main()
