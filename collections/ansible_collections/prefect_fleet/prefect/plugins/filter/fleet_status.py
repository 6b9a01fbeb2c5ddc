# Copyright: prefect-fleet maintainers
# SPDX-License-Identifier: Apache-2.0
"""The fleet's status as data: what each host reported, judged by the fleet's health rules.

playbooks/status.yml gathers the reports (each worker host's `prefect-fleet status`, the server
tier's units and /api/ready, the API's view of the pools, the Dask clusters) and hands them to
`fleet_status`, which returns one document: rows per server, per worker host and environment, per
Dask cluster, each with its problems, and `healthy`. `fleet_status_table` renders it for people;
`make status` prints that table, `make status ARGS=--json` the document itself.
"""

from __future__ import annotations

import csv
import io

WORKER_COLUMNS = (
    ("host", 16),
    ("environment", 12),
    ("worker", 9),
    ("health", 7),
    ("online", 6),
    ("checkout", 12),
    ("branch head", 12),
    ("deployed", 12),
    ("running", 7),
    ("scheduled", 9),
    ("problems", 0),
)


def _worker_rows(report, api, labels, deploying, interval):
    """One row per environment of a worker host's report."""
    rows = []
    pools = (api or {}).get("pools") or {}
    api_ok = bool(api) and "pools" in api
    for environment, env in sorted((report.get("environments") or {}).items()):
        problems = []
        unit, timer = env.get("worker", "?"), env.get("timer", "?")
        sync_result, sync_at = env.get("sync_result", "?"), int(env.get("sync_finished", 0) or 0)
        health = env.get("health", -1)
        commit, head = env.get("commit") or "", env.get("head") or ""
        pool = pools.get(environment) or {}
        worker_name = f"{report.get('hostname', '')}-{environment}"
        online = any(w.get("name") == worker_name and w.get("status") == "ONLINE" for w in pool.get("workers", []))
        scheduled = sum((pool.get("queues") or {}).get(label, {}).get("scheduled", 0) for label in labels)
        behind = commit != head
        late = sync_at == 0 or int(report.get("uptime", 0)) - sync_at > 3 * int(interval)
        if unit != "active":
            problems.append(f"worker {unit}")
        if health != 200:
            problems.append(f"/health {health if health != -1 else 'no answer'}")
        if api_ok and not online:
            problems.append("not ONLINE in the API")
        if not head:
            problems.append("branch head not readable from the remote")
        elif behind and (timer != "active" or sync_result != "success" or late):
            why = f": {env['sync_error']}" if env.get("sync_error") and sync_result != "success" else ""
            problems.append(f"checkout stale (sync timer {timer}, last sync {sync_result}){why}")
        deploy = env.get("deploy")
        registers = environment in deploying
        if registers and not deploy:
            problems.append(f"deployments never registered (journalctl -u prefect-deploy@{environment})")
        elif registers and not deploy.get("ok"):
            why = "the spec is wrong: " if deploy.get("kind") == "spec" else "the API failed: "
            problems.append(
                f"deployments of {str(deploy.get('commit', '?'))[:12]} not registered, {why}"
                + " / ".join(deploy.get("errors", []))
            )
        rows.append(
            {
                "host": report.get("host"),
                "environment": environment,
                "worker": unit,
                "health": health,
                "online": online if api_ok else None,
                "checkout": commit,
                "branch_head": head,
                "behind": behind,
                "deployed": (deploy or {}).get("commit", "?") if registers else None,
                "running": len(env.get("runs", [])),
                "scheduled": scheduled if api_ok else None,
                "problems": problems,
            }
        )
    return rows


def _server_rows(server, version):
    rows, problems = [], []
    ready = {int(port): status for port, status in (server.get("ready") or {}).items()}
    ports = sorted(ready)
    for name, state in (server.get("units") or {}).items():
        # A replica's port is in its unit's name; a single server has one port; the services none.
        if "@" in name:
            port = int(name.split("@", 1)[1].split(".", 1)[0])
        elif "services" in name:
            port = None
        else:
            port = ports[0] if ports else None
        rows.append(
            {
                "host": server["host"],
                "unit": name,
                "state": state,
                "ready": ready.get(port) if port is not None else None,
                "version": version,
                "database": server.get("database"),
            }
        )
        if state != "active":
            problems.append(f"{server['host']}: server unit {state} ({name})")
    for port in ports:
        if ready[port] != 200:
            problems.append(f"{server['host']}: /api/ready on port {port} {ready[port]}")
    return rows, problems


def client_versions(workers):
    """The Dask clients' comparisons that worker hosts made (`prefect-fleet status --dask`), as
    dask_cluster_status takes them: [{environment, host, cluster, distributed, differ | error}]."""
    found = []
    for worker in workers or []:
        report = worker.get("report") or {}
        for environment, env in sorted((report.get("environments") or {}).items()):
            if env.get("dask"):
                found.append({"environment": environment, "host": worker.get("host"), **env["dask"]})
    return found


def haproxy_readings(stats_csv, backend="", fronts=()):
    """HAProxy's stats page as CSV -> {name: status}: with `backend` (a load balancer), the status
    of each of its servers; without, of each TLS front's local API process, as front_<port> (a
    server host). A front missing from the page reads '?'."""
    rows = list(csv.DictReader(io.StringIO(str(stats_csv or "").lstrip("# "))))
    if backend:
        return {
            r["svname"]: r["status"]
            for r in rows
            if r.get("pxname") == backend and r.get("svname") not in ("FRONTEND", "BACKEND")
        }
    local = {r["pxname"]: r["status"] for r in rows if r.get("svname") == "local"}
    return {f"front_{port}": local.get(f"local_{port}", "?") for port in fronts or ()}


def fleet_status(inputs):
    """inputs -> the status document. inputs: servers [{host, units: {unit: state}, ready: {port:
    status}, database}], ha [{host, kind: redis|lb|front, unit, state, replicas: {name: state}}], api
    (work_pool_info's result: version, pools), workers [{host, report (prefect-fleet status), labels,
    deploying, interval}], dask (the dask_swarm role's readings on the swarm's manager, or none),
    dask_expected."""
    api = inputs.get("api") or {}
    problems = []
    servers = []
    for server in inputs.get("servers", []):
        rows, found = _server_rows(server, api.get("version"))
        servers += rows
        problems += found
    ha = []
    for host in inputs.get("ha", []):
        ha.append(host)
        if host.get("state") != "active":
            problems.append(f"{host['host']}: {host.get('unit', '?')} {host.get('state', '?')}")
        if host.get("kind") in ("lb", "front"):
            # A load balancer's replicas; a server host's TLS fronts, each with its API process.
            what = "replica" if host["kind"] == "lb" else "TLS front"
            replicas = host.get("replicas") or {}
            problems += [
                f"{host['host']}: {what} {name} {state}" for name, state in sorted(replicas.items()) if state != "UP"
            ]
            if not replicas:
                problems.append(f"{host['host']}: no {what} state from the stats page")
    workers = []
    for worker in inputs.get("workers", []):
        if not worker.get("report"):
            why = f"no report from the host: {worker['error']}" if worker.get("error") else "no report from the host"
            workers.append({"host": worker.get("host"), "environment": "-", "problems": [why]})
            continue
        report = {**worker["report"], "host": worker.get("host", worker["report"].get("host"))}
        workers += _worker_rows(
            report, api, worker.get("labels", []), worker.get("deploying", []), worker.get("interval", 60)
        )
    if workers and "pools" not in api:
        problems.append(f"the Prefect API did not answer the worker hosts: {api.get('msg', 'not asked')}")
    readings = inputs.get("dask")
    dask = dask_cluster_status({**readings, "versions": client_versions(inputs.get("workers"))}) if readings else []
    problems += [f"dask {row['cluster']}: {'; '.join(row['problems'])}" for row in dask if row.get("problems")]
    if inputs.get("dask_expected") and not dask:
        problems.append("the Dask clusters were not read (swarm manager unreachable?)")
    problems += [
        f"{row['host']}/{row['environment']}: {'; '.join(row['problems'])}" for row in workers if row["problems"]
    ]
    return {
        "healthy": not problems,
        "problems": problems,
        "servers": servers,
        "ha": ha,
        "workers": workers,
        "dask": dask,
    }


def _by_item(results, key, value):
    """The first loop result whose item's `key` (a dotted path) is `value`."""
    for result in results or []:
        item = result.get("item") or {}
        for part in key.split("."):
            item = item.get(part) if isinstance(item, dict) else None
        if item == value:
            return result
    return {}


def _service(services, name):
    """The service named `name` among docker_swarm_info's verbose services, or {}."""
    for service in services or []:
        if ((service or {}).get("Spec") or {}).get("Name") == name:
            return service
    return {}


def dask_cluster_status(inputs):
    """The dask_swarm role's readings -> a row per cluster. inputs: clusters (names, in order),
    workers (each cluster's worker service name), counts (the uri results of each scheduler's
    /json/counts.json), services (docker_swarm_info's verbose services), versions (each
    environment's client compared with its cluster, see client_versions). A cluster whose scheduler
    did not answer has its versions unchecked: its clients could not have reached it either, and it
    is reported as down already."""
    rows = []
    for name in inputs.get("clusters", []):
        counts = _by_item(inputs.get("counts"), "key", name)
        service = _service(inputs.get("services"), (inputs.get("workers") or {}).get(name))
        replicated = ((service.get("Spec") or {}).get("Mode") or {}).get("Replicated") or {}
        desired = int(replicated.get("Replicas", 0))
        answered = counts.get("status", -1) == 200
        workers = int((counts.get("json") or {}).get("workers", -1)) if answered else -1
        problems = []
        if not answered:
            problems.append(f"scheduler did not answer ({counts.get('msg', counts.get('status', -1))})")
        elif workers < desired or desired == 0:
            problems.append(f"{workers} of {desired} workers joined")
        checks = [c for c in inputs.get("versions") or [] if answered and c.get("cluster") == name]
        version_problems = []
        for check in checks:
            if "error" in check:
                version_problems.append(f"{check['environment']} client on {check['host']}: {check['error']}")
            elif check.get("differ"):
                version_problems.append(f"{check['environment']} versions differ: {', '.join(check['differ'])}")
        rows.append(
            {
                "cluster": name,
                "scheduler": "up" if answered else "down",
                "workers": f"{workers if workers >= 0 else '?'}/{desired}",
                "tasks": (counts.get("json") or {}).get("tasks", "?"),
                "versions": ("DIFFER" if version_problems else "match") if checks else "unchecked",
                "problems": problems + version_problems,
            }
        )
    return rows


def _cell(value, missing="?"):
    if value is None:
        return missing
    if value is True:
        return "True"
    if value is False:
        return "False"
    return str(value)


def fleet_status_table(status):
    """The status document as the table people read."""
    lines = []
    for s in status.get("servers", []):
        ready = "no-answer" if s["ready"] == -1 else _cell(s["ready"], "-")
        lines.append(
            f"server   {s['host']:<16} {s['unit']:<32} {s['state']:<9} /api/ready {ready:<9} "
            f"version {_cell(s['version']):<8} database {_cell(s['database'])}"
        )
    for h in status.get("ha", []):
        replicas = ", ".join(f"{name} {state}" for name, state in sorted((h.get("replicas") or {}).items()))
        lines.append(
            f"{h.get('kind', '?'):<8} {h['host']:<16} {h.get('unit', '?'):<32} {h.get('state', '?'):<9} {replicas}"
        )
    for r in status.get("dask", []):
        lines.append(
            f"dask     {r['cluster']:<16} scheduler {r['scheduler']:<5} workers {r['workers']!s:<7} tasks {r['tasks']!s:<6} "
            f"versions {r['versions']:<9} {'; '.join(r['problems']) or 'ok'}"
        )
    fmt = " ".join(f"%-{column[1]}s" if column[1] else "%s" for column in WORKER_COLUMNS)
    lines.append(fmt % tuple(column[0] for column in WORKER_COLUMNS))
    for w in status.get("workers", []):
        lines.append(
            fmt
            % (
                w.get("host"),
                w.get("environment"),
                w.get("worker", "?"),
                "none" if w.get("health", -1) == -1 else w.get("health"),
                _cell(w.get("online")),
                (w.get("checkout") or "-")[:12],
                (w.get("branch_head") or "-")[:12],
                "-" if w.get("deployed") is None else w["deployed"][:12],
                _cell(w.get("running")),
                _cell(w.get("scheduled")),
                "; ".join(w["problems"]) or "ok",
            )
        )
    if status.get("healthy"):
        lines.append("The fleet is healthy.")
    else:
        lines.append("Unhealthy: " + " | ".join(status.get("problems", [])))
    return "\n".join(lines)


class FilterModule:
    def filters(self):
        return {
            "fleet_status": fleet_status,
            "haproxy_readings": haproxy_readings,
            "fleet_status_table": fleet_status_table,
            "dask_cluster_status": dask_cluster_status,
        }
