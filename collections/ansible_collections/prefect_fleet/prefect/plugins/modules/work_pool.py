#!/usr/bin/python
# Copyright: prefect-fleet maintainers
# SPDX-License-Identifier: Apache-2.0
"""Ansible module: manage a Prefect 3 work pool through the REST API."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: work_pool
short_description: Manage a Prefect 3 work pool
description:
  - Creates, updates or deletes a work pool through Prefect's REST API, idempotently.
  - In this fleet an environment (C(production), C(staging)) is a work pool of type C(process).
  - Supports check mode and diff mode.
options:
  name:
    description: Pool name.
    type: str
    required: true
  type:
    description: Worker type of the pool. It cannot change once the pool exists.
    type: str
    default: process
  state:
    description: Whether the pool exists.
    type: str
    choices: [present, absent]
    default: present
  description:
    description: Free text shown in the UI.
    type: str
  concurrency_limit:
    description: Most flow runs the pool runs at once; C(0) removes the limit.
    type: int
  paused:
    description: Whether the pool is paused.
    type: bool
  base_job_template:
    description:
      - The pool's base job template (C(job_configuration) and C(variables)), for example the
        output of C(ProcessWorker.get_default_base_job_template()). Required to create a pool
        when O(job_variables) is set.
    type: dict
  job_variables:
    description:
      - Defaults for the job variables of the template, for example
        C(working_dir=/opt/prefect/production) and C(stream_output=false). Each key must be a
        variable of the template.
    type: dict
  queues:
    description:
      - Work queues that must exist in the pool, created with Prefect's defaults when missing (one request lists
        them all). Queues not named here are left alone; manage a queue's settings, or remove it, with
        M(prefect_fleet.prefect.work_queue).
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - prefect_fleet.prefect.api
author:
  - prefect-fleet maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: One pool per environment, running flows in that environment's checkout
  prefect_fleet.prefect.work_pool:
    api_url: "{{ fleet_prefect_api_url }}"
    auth_string: "{{ prefect_server_auth_string }}"
    name: production
    base_job_template: "{{ process_template }}"
    job_variables:
      working_dir: /opt/prefect/production
      stream_output: false

- name: Remove an environment
  prefect_fleet.prefect.work_pool:
    api_url: "{{ fleet_prefect_api_url }}"
    name: old-env
    state: absent
"""

RETURN = r"""
pool:
  description: The pool as the API returned it after the change (or as it is, with no change).
  returned: when state is present
  type: dict
queues_created:
  description: The queues of O(queues) that did not exist and were created (or would be, in check mode).
  returned: when state is present
  type: list
  elements: str
"""

import copy

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.prefect_fleet.prefect.plugins.module_utils.api import (
    API_ARGUMENT_SPEC,
    PrefectAPI,
    PrefectAPIError,
    converge_present,
    ensure_absent,
    given_fields,
    path_segment,
)


def with_job_variables(template, job_variables):
    """Return a copy of `template` whose variables default to `job_variables`."""
    result = copy.deepcopy(template)
    properties = result.setdefault("variables", {}).setdefault("properties", {})
    unknown = sorted(set(job_variables) - set(properties))
    if unknown:
        raise ValueError(
            "job_variables {} are not variables of the base job template (known: {})".format(
                ", ".join(unknown), ", ".join(sorted(properties))
            )
        )
    for key, value in job_variables.items():
        properties[key]["default"] = value
    return result


def desired_state(module, current):
    """The managed fields as they should be: the given options over what exists."""
    params = module.params
    desired = given_fields(
        params, {"description": "description", "concurrency_limit": "concurrency_limit", "paused": "is_paused"}
    )
    template = params["base_job_template"]
    if template is None and params["job_variables"]:
        template = (current or {}).get("base_job_template")
        if not template:
            raise ValueError("job_variables needs base_job_template to create the pool, or an existing template")
    if template is not None:
        desired["base_job_template"] = with_job_variables(template, params["job_variables"] or {})
    return desired


QUEUES_PAGE = 200


def ensure_queues(module, api, pool_path, pool_existed, names):
    """Create the queues of `names` that the pool lacks; return their names."""
    if not names:
        return []
    existing = set()
    while pool_existed or not module.check_mode:
        # The API answers at most its default limit (200) per request: read page after page.
        page = api.request("POST", pool_path + "/queues/filter", {"limit": QUEUES_PAGE, "offset": len(existing)})
        existing.update(queue["name"] for queue in page)
        if len(page) < QUEUES_PAGE:
            break
    missing = [name for name in dict.fromkeys(names) if name not in existing]
    if not module.check_mode:
        for name in missing:
            try:
                api.request("POST", pool_path + "/queues", {"name": name})
            except PrefectAPIError as error:
                if error.status != 409:  # made meanwhile by another client: present all the same
                    raise
    return missing


def main():
    argument_spec = dict(
        API_ARGUMENT_SPEC,
        name={"type": "str", "required": True},
        type={"type": "str", "default": "process"},
        state={"type": "str", "choices": ["present", "absent"], "default": "present"},
        description={"type": "str"},
        concurrency_limit={"type": "int"},
        paused={"type": "bool"},
        base_job_template={"type": "dict"},
        job_variables={"type": "dict"},
        queues={"type": "list", "elements": "str", "default": []},
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    api = PrefectAPI(module)
    path = "/work_pools/" + path_segment(params["name"])

    try:
        current = api.get_or_none(path)
        if params["state"] == "absent":
            ensure_absent(module, api, current, path, params["name"])
        if params["concurrency_limit"] is not None and params["concurrency_limit"] < 0:
            module.fail_json(
                msg="concurrency_limit must be 0 (no limit) or more, got {}".format(params["concurrency_limit"])
            )
        if current is not None and current.get("type") != params["type"]:
            module.fail_json(
                msg="work pool {} has type {}, not {}; a pool's type cannot change: remove it first".format(
                    params["name"], current.get("type"), params["type"]
                )
            )
        desired = desired_state(module, current)
        body = dict(desired, name=params["name"], type=params["type"])
        result = converge_present(
            module,
            api,
            path,
            current,
            desired if current else body,
            lambda: api.request("POST", "/work_pools/", body),
            "pool",
        )
        result["queues_created"] = ensure_queues(module, api, path, current is not None, params["queues"])
        if result["queues_created"]:
            result["changed"] = True
            diff = result.setdefault("diff", {"before": {}, "after": {}})
            diff["after"] = dict(diff["after"], queues_created=result["queues_created"])
        module.exit_json(**result)
    except (PrefectAPIError, ValueError) as error:
        module.fail_json(msg=str(error))


if __name__ == "__main__":
    main()
