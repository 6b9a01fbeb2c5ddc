"""`prefect-fleet deploy`: register one environment's deployments from its own checkout.

Run by the prefect-deploy@ENVIRONMENT unit (as the service user, with the environment's settings)
on the one worker host that registers that environment's deployments, with the environment's own
virtualenv (so with the Prefect release the fleet runs):

    prefect-fleet deploy --python /opt/prefect/ENV/venv/bin/python --config ENV.deploy.json ENV
    prefect-fleet deploy --check FLOWS_DIR --labels a,b [--environment staging]     (no API)

It reads the spec (flows/deployments.yml) of the environment's checkout, checks all of it before
any change, then makes the environment's deployments (work pool = environment, work queue = host
label) exactly what the spec declares: it creates and updates them through Prefect's REST API and
deletes (or pauses) the deployments it made earlier that the spec no longer declares. It touches
only deployments tagged MANAGED_TAG in the environment's pool: deployments made by hand stay.

--check only checks a flows directory (no API): CI can run it before a push.

Exit status: 0 done, 1 the spec is wrong (nothing changed; the next commit is tried again), 2 the
API failed (tried again at the next sync). The outcome is also written to deploy-state.json in the
environment's directory, which the fleet's status play reads.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from prefect_fleet_host.layout import Layout, commit_of_tree, escaping_link

MANAGED_TAG = "prefect-fleet"
NAME_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
ENTRYPOINT_PATTERN = re.compile(r"^(?P<path>[^:]+\.py):(?P<function>[A-Za-z_][A-Za-z0-9_]*)$")
ENV_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# prefect.yaml's names wherever they mean the same thing, and the fleet's own `labels`.
FIELDS = {
    "name",
    "entrypoint",
    "labels",
    "parameters",
    "description",
    "tags",
    "schedules",
    "concurrency_limit",
    "paused",
    "enforce_parameter_schema",
    "work_pool",
}
HINTS = {
    "flow": "the flow's name comes from its @flow decorator (as in prefect.yaml)",
    "cron": "a schedule goes in `schedules: [{cron: ...}]`",
    "schedule": "schedules go in `schedules:` (a list)",
    "version": "the fleet sets each deployment's version to the commit it was registered from",
    "work_queue_name": "the fleet routes by `labels` (one work queue per label)",
}
# Job variables of Prefect's process worker that a branch's spec may set only where the inventory
# allows it (fleet_environments.<env>.branch_may_set_job_variables): `command` runs another
# program in place of the flow, `working_dir` starts the run outside its checkout, and
# `stream_output` ties the run to its worker process, which the fleet's hand-off restarts (the
# pool turns it off, docs/operations.md).
GUARDED_JOB_VARIABLES = ("command", "stream_output", "working_dir")
SCHEDULE_FIELDS = {"cron", "interval", "rrule", "anchor_date", "timezone", "day_or", "active", "parameters", "slug"}
# An interval schedule's anchor when the spec gives none: fixed, so that registering twice
# changes nothing (Prefect's own default is "now").
DEFAULT_ANCHOR = "2020-01-01T00:00:00+00:00"
EXIT_SPEC, EXIT_API = 1, 2


class SpecError(Exception):
    """Every problem found in a spec, one message each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def read_dotenv(path: Path) -> dict[str, str]:
    """A project's plain settings: KEY=VALUE lines, `#` comments, values optionally quoted."""
    settings: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not ENV_NAME_PATTERN.match(key):
            raise ValueError(f"line {number} is not KEY=VALUE")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        settings[key] = value
    return settings


def _schedule(entry: dict, where: str, problems: list[str], active_default: bool) -> dict | None:
    from prefect.client.schemas.schedules import construct_schedule

    unknown = sorted(set(entry) - SCHEDULE_FIELDS)
    if unknown:
        problems.append(f"{where}: unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(SCHEDULE_FIELDS))})")
        return None
    kinds = [k for k in ("cron", "interval", "rrule") if entry.get(k) is not None]
    if len(kinds) != 1:
        problems.append(f"{where}: needs exactly one of cron, interval, rrule")
        return None
    try:
        args = {
            k: entry[k] for k in ("cron", "interval", "rrule", "anchor_date", "timezone") if entry.get(k) is not None
        }
        if "interval" in args:
            args.setdefault("anchor_date", DEFAULT_ANCHOR)
        schedule = construct_schedule(**args)
        if "day_or" in entry:
            schedule = schedule.model_copy(update={"day_or": bool(entry["day_or"])})
    except Exception as error:  # pydantic's ValidationError or construct_schedule's ValueError
        errors = error.errors() if hasattr(error, "errors") else []
        detail = errors[0]["msg"].removeprefix("Value error, ") if errors else " ".join(str(error).split())
        problems.append(f"{where}: {kinds[0]} {entry[kinds[0]]!r}: {detail}")
        return None
    for key, kind in (("active", bool), ("parameters", dict), ("slug", str)):
        if key in entry and not isinstance(entry[key], kind):
            problems.append(f"{where}: {key} must be a {kind.__name__}")
            return None
    return {
        "schedule": schedule.model_dump(mode="json"),
        "active": entry.get("active", active_default),
        "parameters": entry.get("parameters") or {},
        "slug": entry.get("slug"),
    }


@dataclass
class _Context:
    """What every entry of a spec is read against."""

    flows_dir: Path
    environment: str
    known_labels: list[str]
    schedules_active: bool
    run_dir: str
    version: str | None
    spec_name: str
    may_set: frozenset[str] = frozenset()
    may_activate: bool = False
    seen: set[str] = field(default_factory=set)


def plan(
    spec: Any,
    flows_dir: Path,
    environment: str,
    known_labels: list[str],
    schedules_active: bool,
    run_dir: str | None = None,
    version: str | None = None,
    spec_name: str = "deployments.yml",
    may_set: list[str] | tuple[str, ...] = (),
    may_activate: bool = False,
) -> list[dict]:
    """The deployments `spec` declares for `environment`, as the API takes them; raises SpecError
    naming every problem. `flows_dir` is read; `run_dir` is where runs start (the checkout's
    flows directory through the environment's `current` link, which outlives this tree).
    `may_set`: the GUARDED_JOB_VARIABLES the inventory lets this environment's branch set;
    `may_activate`: whether a schedule may say `active: true` where schedules are off."""
    if not isinstance(spec, dict) or not isinstance(spec.get("deployments"), list):
        raise SpecError([f"{spec_name}: must be a mapping with a `deployments:` list"])
    context = _Context(
        flows_dir,
        environment,
        known_labels,
        schedules_active,
        run_dir or str(flows_dir),
        version,
        spec_name,
        frozenset(may_set),
        may_activate,
    )
    problems: list[str] = []
    extra = sorted(set(spec) - {"deployments"})
    if extra:
        problems.append(f"{spec_name}: unknown top-level field(s) {', '.join(extra)}")
    desired: list[dict] = []
    for index, entry in enumerate(spec["deployments"]):
        if not isinstance(entry, dict):
            problems.append(f"{spec_name}: deployment #{index + 1} is not a mapping")
            continue
        desired += _plan_entry(entry, index, context, problems)
    if problems:
        raise SpecError(problems)
    return desired


def _plan_entry(entry: dict, index: int, context: _Context, problems: list[str]) -> list[dict]:
    """One entry of the spec: its deployments (one per label), or none and its problems added."""
    name = entry.get("name")
    where = f"{context.spec_name}, deployment '{name if name is not None else '#' + str(index + 1)}'"
    before = len(problems)
    for key in sorted(set(entry) - FIELDS):
        hint = HINTS.get(key, f"known: {', '.join(sorted(FIELDS))}")
        problems.append(f"{where}: unknown field '{key}' ({hint})")
    _check_name(name, where, context, problems)
    labels = _labels(entry, where, context, problems)
    entrypoint = entry.get("entrypoint")
    match, flow_name, schema = _load_entrypoint(entrypoint, where, context.flows_dir, problems)
    parameters = _parameters(entry, entrypoint, schema, where, problems)
    tags, description, concurrency_limit = _plain_fields(entry, where, problems)
    job_variables = _job_variables(entry, match, where, context, problems)
    schedules = _schedules(entry, where, context, problems)
    if len(problems) > before:
        return []
    run_dir, environment = context.run_dir, context.environment
    return [
        {
            "name": f"{name}-{environment}-{label}",
            "flow_name": flow_name,
            "work_pool_name": environment,
            "work_queue_name": label,
            "entrypoint": entrypoint,
            "path": run_dir,
            "pull_steps": [{"prefect.deployments.steps.set_working_directory": {"directory": run_dir}}],
            "parameters": parameters,
            "parameter_openapi_schema": schema,
            "enforce_parameter_schema": entry.get("enforce_parameter_schema", True),
            "job_variables": job_variables,
            "tags": sorted({*tags, environment, label, MANAGED_TAG}),
            "description": description,
            "version": context.version,
            "paused": entry.get("paused", False),
            "concurrency_limit": concurrency_limit,
            "schedules": schedules,
        }
        for label in labels
    ]


def _check_name(name: Any, where: str, context: _Context, problems: list[str]) -> None:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        problems.append(f"{where}: name must be lower-case letters, digits and '-' (at most 63)")
    elif name in context.seen:
        problems.append(f"{where}: a second deployment of that name")
    else:
        context.seen.add(name)


def _labels(entry: dict, where: str, context: _Context, problems: list[str]) -> list[str]:
    labels = entry.get("labels")
    if not isinstance(labels, list) or not labels or not all(isinstance(label, str) for label in labels):
        problems.append(f"{where}: labels must list at least one host label")
        return []
    unknown_labels = [label for label in labels if label not in context.known_labels]
    if unknown_labels:
        problems.append(
            f"{where}: labels {', '.join(unknown_labels)} are carried by no worker host"
            f" (hosts carry: {', '.join(sorted(context.known_labels)) or 'none'})"
        )
    return labels


def _load_entrypoint(entrypoint: Any, where: str, flows_dir: Path, problems: list[str]):
    """(match, flow name, parameter schema) of an entrypoint, read from the source with Prefect's
    own functions, as `prefect deploy` does (which runs the module's imports and top-level code)."""
    from prefect.flows import load_flow_arguments_from_entrypoint
    from prefect.utilities.callables import parameter_schema_from_entrypoint

    match = ENTRYPOINT_PATTERN.match(entrypoint) if isinstance(entrypoint, str) else None
    if entrypoint is None:
        problems.append(f"{where}: entrypoint is missing (path/file.py:function, in {flows_dir.name}/)")
        return None, None, None
    if not match:
        problems.append(f"{where}: entrypoint must read path/file.py:function, got {entrypoint!r}")
        return None, None, None
    source = (flows_dir / match["path"]).resolve()
    if not source.is_relative_to(flows_dir.resolve()):
        problems.append(f"{where}: entrypoint {entrypoint!r} is outside {flows_dir.name}/")
        return match, None, None
    if not source.is_file():
        problems.append(
            f"{where}: entrypoint {entrypoint!r}: {flows_dir.name}/{match['path']} does not exist in this commit"
        )
        return match, None, None
    full = f"{source}:{match['function']}"
    try:
        flow_name = load_flow_arguments_from_entrypoint(full, arguments={"name"})["name"]
        schema = parameter_schema_from_entrypoint(full).model_dump(mode="json")
    except Exception as error:
        problems.append(f"{where}: entrypoint {entrypoint!r}: {' '.join(str(error).split()) or type(error).__name__}")
        return match, None, None
    return match, flow_name, schema


def _parameters(entry: dict, entrypoint: Any, schema: dict | None, where: str, problems: list[str]) -> dict:
    parameters = entry.get("parameters") or {}
    if not isinstance(parameters, dict):
        problems.append(f"{where}: parameters must be a mapping")
        return {}
    properties = (schema or {}).get("properties") or {}
    if schema is not None and not any(p.get("kind") == "var_keyword" for p in properties.values()):
        unknown_parameters = sorted(set(parameters) - set(properties))
        if unknown_parameters:
            problems.append(
                f"{where}: parameters {', '.join(unknown_parameters)} are not parameters of {entrypoint}"
                f" (it takes: {', '.join(properties) or 'none'})"
            )
    return parameters


def _plain_fields(entry: dict, where: str, problems: list[str]) -> tuple[list[str], Any, Any]:
    """tags, description and concurrency_limit, checked; paused and enforce_parameter_schema too."""
    tags = entry.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        problems.append(f"{where}: tags must be a list of strings")
        tags = []
    description = entry.get("description")
    if description is not None and not isinstance(description, str):
        problems.append(f"{where}: description must be text")
    concurrency_limit = entry.get("concurrency_limit")
    if concurrency_limit is not None and (
        isinstance(concurrency_limit, bool) or not isinstance(concurrency_limit, int) or concurrency_limit < 1
    ):
        problems.append(f"{where}: concurrency_limit must be a whole number above 0")
    for key in ("paused", "enforce_parameter_schema"):
        if key in entry and not isinstance(entry[key], bool):
            problems.append(f"{where}: {key} must be true or false")
    return tags, description, concurrency_limit


def _job_variables(entry: dict, match, where: str, context: _Context, problems: list[str]) -> dict:
    flows_dir, environment = context.flows_dir, context.environment
    work_pool = entry.get("work_pool") or {}
    job_variables: dict = {}
    if not isinstance(work_pool, dict):
        problems.append(f"{where}: work_pool must be a mapping")
    else:
        for key in sorted(set(work_pool) - {"job_variables"}):
            problems.append(
                f"{where}: work_pool.{key} is the fleet's to set (pool = environment, queue = label);"
                " only work_pool.job_variables may be given"
            )
        job_variables = work_pool.get("job_variables") or {}
        if not isinstance(job_variables, dict):
            problems.append(f"{where}: work_pool.job_variables must be a mapping")
            job_variables = {}
        for key in sorted(set(job_variables) & set(GUARDED_JOB_VARIABLES) - context.may_set):
            problems.append(
                f"{where}: work_pool.job_variables.{key} is the fleet's to set in {environment}"
                f" (fleet_environments.{environment}.branch_may_set_job_variables can hand it to the branch)"
            )
    # The project's own plain settings: <project>/.env beside its flows reaches its runs'
    # environment; what the spec's job variables set wins.
    if match and "/" in match["path"]:
        dotenv = flows_dir / match["path"].split("/", 1)[0] / ".env"
        link = escaping_link(flows_dir, dotenv.relative_to(flows_dir))
        if link:
            problems.append(f"{where}: {link} leads out of {flows_dir.name}/ (a symbolic link): refused")
        elif dotenv.is_file():
            try:
                settings = read_dotenv(dotenv)
            except ValueError as error:
                problems.append(f"{where}: {flows_dir.name}/{dotenv.relative_to(flows_dir)}: {error}")
                settings = {}
            spec_env = job_variables.get("env") or {}
            if settings or spec_env:
                job_variables = {**job_variables, "env": {**settings, **spec_env}}
    return job_variables


def _schedules(entry: dict, where: str, context: _Context, problems: list[str]) -> list[dict]:
    schedules_active = context.schedules_active
    schedules = []
    raw_schedules = entry.get("schedules") or []
    if not isinstance(raw_schedules, list):
        problems.append(f"{where}: schedules must be a list")
        return []
    for number, raw in enumerate(raw_schedules, 1):
        if not isinstance(raw, dict):
            problems.append(f"{where}: schedule #{number} is not a mapping")
            continue
        schedule = _schedule(raw, f"{where}, schedule #{number}", problems, schedules_active)
        if schedule is not None and schedule["active"] and not schedules_active and not context.may_activate:
            problems.append(
                f"{where}, schedule #{number}: active, in {context.environment} whose schedules the inventory keeps off"
                f" (fleet_environments.{context.environment}.branch_may_activate_schedules can let a branch"
                " turn one on)"
            )
        elif schedule is not None:
            schedule["slug"] = schedule["slug"] or f"fleet-{number}"
            schedules.append(schedule)
    return schedules


# ---- the API side ---------------------------------------------------------------------------

COMPARED = (
    "work_pool_name",
    "work_queue_name",
    "entrypoint",
    "path",
    "pull_steps",
    "parameters",
    "parameter_openapi_schema",
    "enforce_parameter_schema",
    "job_variables",
    "tags",
    "description",
    "version",
    "paused",
    "concurrency_limit",
)


class ApiError(Exception):
    pass


class Api:
    """Prefect's REST API through Prefect's own client (its URL, auth string or API key, TLS)."""

    def __init__(self) -> None:
        from prefect.client.orchestration import get_client

        self._client = get_client(sync_client=True)
        self._client.__enter__()

    def close(self) -> None:
        self._client.__exit__(None, None, None)

    def call(self, method: str, path: str, body: Any = None, ok_missing: bool = False) -> Any:
        try:
            response = self._client.request(method, path, json=body)
        except Exception as error:
            status = getattr(getattr(error, "response", None), "status_code", None)
            if ok_missing and status == 404:
                return None
            text = getattr(getattr(error, "response", None), "text", "") or str(error)
            raise ApiError(
                f"{method} {path}: {status or type(error).__name__}: {' '.join(text.split())[:300]}"
            ) from error
        return response.json() if response.content else None


def _comparable(key: str, value: Any) -> Any:
    if key in ("parameters", "job_variables", "parameter_openapi_schema"):
        return value or {}
    if key in ("pull_steps",):
        return value or []
    if key == "tags":
        return sorted(value or [])
    if key == "description":
        return value or None
    return value


def _schedules_of(deployment: dict) -> list[dict]:
    from prefect.client.schemas.schedules import SCHEDULE_TYPES
    from pydantic import TypeAdapter

    adapter = TypeAdapter(SCHEDULE_TYPES)
    return sorted(
        (
            {
                "schedule": adapter.validate_python(s["schedule"]).model_dump(mode="json"),
                "active": s.get("active"),
                "parameters": s.get("parameters") or {},
                "slug": s.get("slug"),
            }
            for s in deployment.get("schedules") or []
        ),
        key=lambda s: s["slug"] or "",
    )


def managed_deployments(api: Api, environment: str) -> list[dict]:
    found: list[dict] = []
    while True:
        page = api.call(
            "POST",
            "/deployments/filter",
            {
                "deployments": {"tags": {"all_": [MANAGED_TAG]}},
                "work_pools": {"name": {"any_": [environment]}},
                "sort": "NAME_ASC",
                "offset": len(found),
                "limit": 200,
            },
        )
        found.extend(page)
        if len(page) < 200:
            return found


def apply(api: Api, desired: list[dict], environment: str, removal: str = "delete") -> dict[str, list[str]]:
    """Make the environment's managed deployments `desired`; return what changed, by name."""
    outcome: dict[str, list[str]] = {"created": [], "updated": [], "removed": [], "paused": [], "unchanged": []}
    if api.call("GET", f"/work_pools/{quote(environment, safe='')}", ok_missing=True) is None:
        raise ApiError(f"work pool {environment} does not exist: converge the workers first")
    existing = {d["name"]: d for d in managed_deployments(api, environment)}
    flow_ids: dict[str, str] = {}
    for want in desired:
        flow_id = flow_ids.get(want["flow_name"])
        if flow_id is None:
            flow_id = flow_ids[want["flow_name"]] = api.call("POST", "/flows/", {"name": want["flow_name"]})["id"]
        current = existing.pop(want["name"], None)
        if current is None:  # not ours yet: one of that name made by hand is taken over
            path = f"/deployments/name/{quote(want['flow_name'], safe='')}/{quote(want['name'], safe='')}"
            current = api.call("GET", path, ok_missing=True)
        if current is not None and current["flow_id"] != flow_id:
            api.call("DELETE", f"/deployments/{current['id']}")
            current = None
        if current is None:
            body = {k: v for k, v in want.items() if k != "flow_name"}
            api.call("POST", "/deployments/", dict(body, flow_id=flow_id))
            outcome["created"].append(want["name"])
            continue
        changes = {k: want[k] for k in COMPARED if _comparable(k, current.get(k)) != _comparable(k, want[k])}
        schedules_differ = _schedules_of(current) != sorted(want["schedules"], key=lambda s: s["slug"] or "")
        if changes:
            api.call("PATCH", f"/deployments/{current['id']}", changes)
        if schedules_differ:
            for schedule in current.get("schedules") or []:
                api.call("DELETE", f"/deployments/{current['id']}/schedules/{schedule['id']}")
            if want["schedules"]:
                api.call("POST", f"/deployments/{current['id']}/schedules", want["schedules"])
        outcome["updated" if changes or schedules_differ else "unchanged"].append(want["name"])
    for name, gone in sorted(existing.items()):
        if removal == "pause":
            if not gone.get("paused"):
                api.call("PATCH", f"/deployments/{gone['id']}", {"paused": True})
                outcome["paused"].append(name)
        else:
            api.call("DELETE", f"/deployments/{gone['id']}")
            outcome["removed"].append(name)
    return outcome


# ---- the command ----------------------------------------------------------------------------


def _log(environment: str, commit: str, text: str, stream=sys.stdout) -> None:
    print(f"deploy[{environment}] {commit[:12]}: {text}", file=stream, flush=True)


def _write_state(state_dir: Path, state: dict) -> None:
    path = Layout.of(state_dir).deploy_state_file
    temporary = path.with_suffix(".json.new")
    temporary.write_text(json.dumps(state, indent=1, sort_keys=True) + "\n")
    os.replace(temporary, path)


def run(config: dict) -> int:
    import yaml

    environment = config["environment"]
    layout = Layout.of(config["state_dir"])
    state_dir, current = layout.env_dir, layout.current
    with open(state_dir / ".deploy.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        tree = current.resolve()
        commit = commit_of_tree(tree.name)
        flows_dir = tree / config["flows_dir"]
        state = {"environment": environment, "commit": commit, "started": time.time()}
        spec_path = flows_dir / config["spec"]
        try:
            link = escaping_link(tree, Path(config["flows_dir"]) / config["spec"])
            if link:
                raise SpecError([f"{config['spec']}: {link} leads out of the checkout (a symbolic link): refused"])
            try:
                spec = yaml.safe_load(spec_path.read_text())
            except FileNotFoundError:
                raise SpecError([f"{config['spec']}: not in {config['flows_dir']}/ of this commit"]) from None
            except yaml.YAMLError as error:
                raise SpecError([f"{config['spec']}: not YAML: {' '.join(str(error).split())}"]) from None
            desired = plan(
                spec,
                flows_dir,
                environment,
                config["known_labels"],
                config["schedules_active"],
                run_dir=str(current / config["flows_dir"]),
                version=commit,
                spec_name=config["spec"],
                may_set=config.get("branch_may_set_job_variables", []),
                may_activate=config.get("branch_may_activate_schedules", False),
            )
        except SpecError as error:
            for problem in error.problems:
                _log(environment, commit, problem, sys.stderr)
            _log(environment, commit, "nothing registered: the spec has the errors above", sys.stderr)
            _write_state(state_dir, dict(state, ok=False, kind="spec", errors=error.problems, finished=time.time()))
            # Final for this commit: the next commit is tried, not this one again at every sync.
            layout.deployed_marker.write_text(commit + "\n")
            return EXIT_SPEC
        api = None
        try:
            api = Api()
            outcome = apply(api, desired, environment, config.get("removal", "delete"))
        except ApiError as error:
            _log(environment, commit, f"the API failed: {error}", sys.stderr)
            _write_state(state_dir, dict(state, ok=False, kind="api", errors=[str(error)], finished=time.time()))
            return EXIT_API
        finally:
            if api is not None:
                api.close()
        summary = "; ".join(
            f"{key} {', '.join(names)}" for key, names in outcome.items() if names and key != "unchanged"
        )
        _log(environment, commit, f"{summary or 'no change'} ({len(outcome['unchanged'])} unchanged)")
        _write_state(state_dir, dict(state, ok=True, errors=[], finished=time.time(), **outcome))
        # Read by the sync's hook: this commit is done.
        layout.deployed_marker.write_text(commit + "\n")
        return 0


def check(
    flows_dir: Path,
    labels: list[str],
    environment: str,
    schedules_active: bool,
    may_set: list[str] | tuple[str, ...] = (),
    may_activate: bool = False,
) -> int:
    import yaml

    spec_path = flows_dir / "deployments.yml"
    try:
        desired = plan(
            yaml.safe_load(spec_path.read_text()),
            flows_dir,
            environment,
            labels,
            schedules_active,
            may_set=may_set,
            may_activate=may_activate,
        )
    except SpecError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        return EXIT_SPEC
    for d in desired:
        active = [s["slug"] for s in d["schedules"] if s["active"]]
        print(f"{d['name']}\t{d['flow_name']}\t{d['entrypoint']}\tschedules active: {', '.join(active) or 'none'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="prefect-fleet deploy", description=__doc__.split("\n\n")[0])
    parser.add_argument("environment", nargs="?")
    parser.add_argument("--config", help="settings file (default /etc/prefect-worker/ENVIRONMENT.deploy.json)")
    parser.add_argument("--check", metavar="FLOWS_DIR", help="only check a flows directory's spec (no API)")
    parser.add_argument("--labels", default="", help="with --check: the host labels of the fleet, comma-separated")
    parser.add_argument("--schedules-active", action="store_true", help="with --check: as in production")
    parser.add_argument(
        "--branch-may-set-job-variables",
        default="",
        help=f"with --check: which of {', '.join(GUARDED_JOB_VARIABLES)} the inventory lets the branch set, comma-separated",
    )
    parser.add_argument(
        "--branch-may-activate-schedules",
        action="store_true",
        help="with --check: the inventory lets the branch turn a schedule on where schedules are off",
    )
    args = parser.parse_args(argv)
    if args.check:
        labels = [label for label in args.labels.split(",") if label]
        may_set = [name for name in args.branch_may_set_job_variables.split(",") if name]
        return check(
            Path(args.check),
            labels,
            args.environment or "staging",
            args.schedules_active,
            may_set,
            args.branch_may_activate_schedules,
        )
    if not args.environment:
        parser.error("ENVIRONMENT is required")
    config_path = Path(args.config or f"/etc/prefect-worker/{args.environment}.deploy.json")
    config = json.loads(config_path.read_text())
    return run(config)


if __name__ == "__main__":
    sys.exit(main())
