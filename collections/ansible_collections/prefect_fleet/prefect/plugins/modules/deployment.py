#!/usr/bin/python
# Copyright: prefect-fleet maintainers
# SPDX-License-Identifier: Apache-2.0
"""Ansible module: register a Prefect 3 deployment through the REST API."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: deployment
short_description: Register a Prefect 3 deployment
description:
  - Creates or updates a deployment of a flow through Prefect's REST API, idempotently, or deletes it.
  - In this fleet a deployment runs in one environment (work pool) and for one host label (work
    queue), from that environment's checkout (a C(set_working_directory) pull step).
  - Supports check mode and diff mode.
options:
  flow:
    description: Name of the flow (its C(@flow(name=...))); created when missing.
    type: str
    required: true
  name:
    description: Deployment name, unique per flow.
    type: str
    required: true
  state:
    description: Whether the deployment exists.
    type: str
    choices: [present, absent]
    default: present
  work_pool:
    description: Work pool the runs go to (the environment). Required when O(state=present).
    type: str
  work_queue:
    description: Work queue in that pool (the host label). Required when O(state=present).
    type: str
  entrypoint:
    description: C(path/to/file.py:function), relative to O(directory). Required when O(state=present).
    type: str
  directory:
    description: Directory on the worker host the run starts in (a C(set_working_directory) pull step).
    type: str
  parameters:
    description: Default parameters of the runs.
    type: dict
    default: {}
  job_variables:
    description: Job variables overriding the pool's defaults.
    type: dict
    default: {}
  tags:
    description: Tags of the deployment.
    type: list
    elements: str
    default: []
  description:
    description: Free text shown in the UI.
    type: str
    default: ""
  cron:
    description: A cron schedule (UTC) on which runs are created; empty for none.
    type: str
    default: ""
  paused:
    description: Whether the deployment (and its schedule) is paused.
    type: bool
    default: false
extends_documentation_fragment:
  - prefect_fleet.prefect.api
author:
  - prefect-fleet maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: The fleet report in production, on hosts labelled atd-data02
  prefect_fleet.prefect.deployment:
    api_url: "{{ fleet_prefect_api_url }}"
    auth_string: "{{ prefect_server_auth_string }}"
    flow: fleet-report
    name: fleet-report-production-atd-data02
    work_pool: production
    work_queue: atd-data02
    entrypoint: fleet_report/report.py:fleet_report
    directory: /opt/prefect/production/current/flows
    parameters:
      note: hello
"""

RETURN = r"""
deployment:
  description: The deployment as the API returned it after the change (or as it is, with no change).
  returned: when state is present
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.prefect_fleet.prefect.plugins.module_utils.api import (
    API_ARGUMENT_SPEC,
    PrefectAPI,
    PrefectAPIError,
    ensure_absent,
    ensure_present,
    path_segment,
)

SCHEDULE_SLUG = "fleet-cron"


def desired_fields(params):
    pull_steps = []
    if params["directory"]:
        pull_steps = [{"prefect.deployments.steps.set_working_directory": {"directory": params["directory"]}}]
    return {
        "work_pool_name": params["work_pool"],
        "work_queue_name": params["work_queue"],
        "entrypoint": params["entrypoint"],
        "path": params["directory"],
        "pull_steps": pull_steps,
        "parameters": params["parameters"],
        "job_variables": params["job_variables"],
        "tags": sorted(params["tags"]),
        "description": params["description"],
        "paused": params["paused"],
        "enforce_parameter_schema": False,
    }


def desired_schedules(params):
    if not params["cron"]:
        return []
    return [{"slug": SCHEDULE_SLUG, "schedule": {"cron": params["cron"], "timezone": "UTC"}, "active": True}]


def current_schedules(deployment):
    return [
        {
            "slug": s.get("slug"),
            "schedule": {"cron": s["schedule"].get("cron"), "timezone": s["schedule"].get("timezone")},
            "active": s.get("active"),
        }
        for s in deployment.get("schedules") or []
    ]


def main():
    argument_spec = dict(
        API_ARGUMENT_SPEC,
        flow={"type": "str", "required": True},
        name={"type": "str", "required": True},
        state={"type": "str", "choices": ["present", "absent"], "default": "present"},
        work_pool={"type": "str"},
        work_queue={"type": "str"},
        entrypoint={"type": "str"},
        directory={"type": "str"},
        parameters={"type": "dict", "default": {}},
        job_variables={"type": "dict", "default": {}},
        tags={"type": "list", "elements": "str", "default": []},
        description={"type": "str", "default": ""},
        cron={"type": "str", "default": ""},
        paused={"type": "bool", "default": False},
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        required_if=[("state", "present", ("work_pool", "work_queue", "entrypoint"))],
    )
    params = module.params
    if params["entrypoint"] and ":" not in params["entrypoint"]:
        module.fail_json(msg=f"entrypoint must read path/to/file.py:function, got {params['entrypoint']!r}")
    api = PrefectAPI(module)
    path = "/deployments/name/" + path_segment(params["flow"]) + "/" + path_segment(params["name"])

    try:
        current = api.get_or_none(path)
        if params["state"] == "absent":
            ensure_absent(module, api, current, "/deployments/" + (current or {}).get("id", ""), params["name"])
        if api.get_or_none("/work_pools/" + path_segment(params["work_pool"])) is None:
            module.fail_json(msg=f"work pool {params['work_pool']} does not exist: converge the workers first")
        desired = dict(desired_fields(params), schedules=desired_schedules(params))
        body = dict(desired, name=params["name"])

        def create():
            flow = api.request("POST", "/flows/", {"name": params["flow"]})
            return api.request("POST", "/deployments/", dict(body, flow_id=flow["id"]))

        ensure_present(
            module,
            api,
            path,
            current,
            desired if current else body,
            create,
            "deployment",
            patch_path=lambda found: "/deployments/" + found["id"],
            current_value=comparable_value,
        )
    except PrefectAPIError as error:
        module.fail_json(msg=str(error))


def comparable_value(deployment, key):
    """A deployment's field as the module compares it with the desired one."""
    if key == "schedules":
        return current_schedules(deployment)
    value = deployment.get(key)
    if key == "tags":
        return sorted(value or [])
    if key == "pull_steps":
        return value or []
    if key in ("parameters", "job_variables"):
        return value or {}
    if key == "description":
        return value or ""
    return value


if __name__ == "__main__":
    main()
