"""End to end on a lab fleet from an inventory of its own: three environments (a third, `qa`, on
branch `qa`), a label shared by two hosts, staging and qa on the default server tier, and production
alone on a server tier of its own (a second server, its own credential, its own database and login
role in the PostgreSQL on the first server's host, which admits each tier to its own). It comes up
with `make lab INVENTORY=...` and no code change, routes every run by environment and label to
its own server, and a converge after dropping an environment and a label stops what they ran;
the next changes nothing.
"""

from __future__ import annotations

import json
import re
import secrets
import shlex
import urllib.error
from collections import Counter
from pathlib import Path

import pytest

from lab.ansible import failures, playbook, recaps, task_results
from lab.fleet import Api, Lab, deployment, wait_for, wait_for_checkouts, worker_process
from lab.flowruns import describe, start, wait
from lab.inventory import write_lab_inventory
from lab.repo import push
from prefect_fleet_host.layout import Layout
from tests.conftest import run

pytestmark = pytest.mark.lab

NETWORK = "prefect-fleet-lab-alt"
# Production alone on a tier of its own; staging and qa on the prefect_server group's other host.
TIER = "alt_production_server"
ENVIRONMENTS = {
    "production": {"branch": "production", "healthcheck_port": 8081, "server": TIER},
    "staging": {"branch": "main", "healthcheck_port": 8082},
    "qa": {"branch": "qa", "healthcheck_port": 8083},
}
# The servers at four times the workers' CPU weight (below): what the tests ask must answer while
# the main lab's tests take the machine (CI on 7c31fbc, at the workers' weight: a GET waited over 30 s).
SERVER = {"alt-prefect-01": {"ansible_host": "172.30.78.10", "lab_cpu_shares": 64}}
TIER_SERVER = {"alt-prefect-02": {"ansible_host": "172.30.78.11", "lab_cpu_shares": 64}}
# What group_vars/<tier> holds in a real inventory: the tier's own credential and database password
# (from the vault), its database on PostgreSQL.
TIER_VARS = {
    "vault_prefect_server_auth_string": "admin:{{ lookup('ansible.builtin.password', lab_state_dir ~ "
    "'/secrets/server-auth-alt-production', length=24, chars=['ascii_letters', 'digits']) }}",
    "fleet_prefect_database_backend": "postgresql",
    "vault_prefect_server_database_password": "{{ lookup('ansible.builtin.password', lab_state_dir ~ "
    "'/secrets/database-alt-production', length=24, chars=['ascii_letters', 'digits']) }}",
}
# From a server host, a connection to a database of the tiers' PostgreSQL (host, database, role),
# the role's password read from stdin: "connected", or why not.
CONNECT = """
import asyncio, sys
import asyncpg
host, database, user = sys.argv[1:4]
async def connect():
    try:
        connection = await asyncpg.connect(
            host=host, database=database, user=user, password=sys.stdin.read().strip(), timeout=30
        )
    except Exception as error:
        return f"refused ({type(error).__name__}: {error})"
    await connection.close()
    return "connected"
print(asyncio.run(connect()))
"""
# Where the prefect_server role installs its venvs (prefect_server_install_dir), one per version.
SERVER_VENVS = "/opt/prefect-server/venvs"
# alt-data05 and alt-data06 share `etl`; both carry labels flows/deployments.yml targets.
WORKERS = {
    "alt-data05": {"ansible_host": "172.30.78.15", "fleet_labels": ["atd-data02", "etl"]},
    "alt-data06": {"ansible_host": "172.30.78.16", "fleet_labels": ["etl", "gis"]},
}


# A staging flow, pushed to `main`: with the credential it has (its run's own settings), it tries
# production's server, and its own as a control (the same calls, which its own server answers).
PROBE = '''"""Pushed by tests/inventory: a staging run tries production's API with its own credential."""

import base64
import json
import os
import ssl
import urllib.error
import urllib.request

from prefect import flow, get_run_logger

SECRET = "/block_types/slug/secret/block_documents/name/%s-lab-token?include_secrets=true"
# The fleet CA, as the run's own Prefect client trusts it.
CONTEXT = ssl.create_default_context(cafile=os.environ.get("PREFECT_API_SSL_CERT_FILE") or None)


def call(api: str, method: str, path: str, body) -> str:
    token = base64.b64encode(os.environ.get("PREFECT_API_AUTH_STRING", "").encode()).decode()
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": "Basic " + token, "Content-Type": "application/json"}
    try:
        request = urllib.request.Request(api + path, data, headers, method=method)
        with urllib.request.urlopen(request, timeout=30, context=CONTEXT) as r:
            return "answered %d" % r.status
    except urllib.error.HTTPError as error:
        return "refused (%d)" % error.code
    except OSError as error:
        return "refused (%s)" % type(error).__name__


@flow(name="FLOW_NAME")
def probe(production_api: str, deployment_id: str) -> dict:
    own = os.environ["PREFECT_API_URL"]
    report = {
        "list production's deployments": call(production_api, "POST", "/deployments/filter", {}),
        "read production's Secret block": call(production_api, "GET", SECRET % "production", None),
        "start a run of a production deployment": call(
            production_api, "POST", "/deployments/%s/create_flow_run" % deployment_id, {}
        ),
        "control: list its own deployments": call(own, "POST", "/deployments/filter", {}),
        "control: read its own Secret block": call(own, "GET", SECRET % "staging", None),
    }
    get_run_logger().info("FLEET_REPORT %s", json.dumps(report))
    return report
'''


def groups(workers: dict) -> dict:
    return {
        "prefect_server": SERVER,
        TIER: TIER_SERVER,
        # PostgreSQL on the server's own host: a smaller fleet, the same roles.
        "prefect_database": SERVER,
        "prefect_workers": workers,
        "lab_git_remote": {"alt-git-01": {"ansible_host": "172.30.78.20"}},
    }


def write(path, environments: dict, workers: dict):
    # 1/64 of Docker's default weight on contended CPU (the servers 1/16): `make test` runs this
    # fleet in the background of the main lab's tests, which must keep the machine first (alone,
    # the weight changes nothing: it only splits CPU that two containers both want). So starved,
    # an SSH handshake may take longer than Ansible's 10 s.
    return write_lab_inventory(
        path,
        NETWORK,
        "172.30.78.0/24",
        groups(workers),
        environments=environments,
        settings={"lab_cpu_shares": 16, "ansible_ssh_timeout": 30},
        children={"prefect_server": [TIER]},
        group_vars={TIER: TIER_VARS},
    )


@pytest.fixture(scope="module")
def alt(tmp_path_factory):
    """A lab of its own, brought up by `make lab INVENTORY=...` on a network of its own (it may
    run beside the main lab, which it does not touch) and removed by `make lab-down`."""
    inventory = write(tmp_path_factory.mktemp("alt") / "inventory", ENVIRONMENTS, WORKERS)
    try:
        up = run(["make", "--no-print-directory", "lab", f"INVENTORY={inventory}"], timeout=2400)
        yield inventory, up
    finally:
        down = run(["make", "--no-print-directory", "lab-down", f"INVENTORY={inventory}"], timeout=600)
        assert down.returncode == 0, down.stdout[-3000:]
        left = run(["docker", "ps", "-a", "--filter", f"label=prefect-fleet-lab={NETWORK}", "-q"])
        assert left.stdout.strip() == ""


def test_make_lab_brings_it_up_and_runs_every_flow_where_it_belongs(alt):
    inventory, up = alt
    assert up.returncode == 0, failures(up.stdout) + "\n" + up.stdout[-5000:] + up.stderr[-2000:]
    lab = Lab.of(str(inventory))
    branches = lab.branch_heads()
    assert set(branches) == {"production", "main", "qa"}, "the lab's remote got one branch per environment"
    assert len(set(branches.values())) == 3, "each environment's branch has a commit of its own"
    carriers = {"atd-data02": {"alt-data05"}, "etl": {"alt-data05", "alt-data06"}}
    rows = re.findall(
        r"^(\S+-(production|staging|qa)-(\S+))\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*$", up.stdout, re.M
    )
    table = {(environment, label): row for (_, environment, label, *row) in rows}
    expected = {(environment, label) for environment in ENVIRONMENTS for label in carriers}
    assert set(table) == expected, up.stdout[-3000:]
    for (environment, label), (env_column, label_column, host, commit, state) in table.items():
        assert (env_column, label_column, state) == (environment, label, "COMPLETED")
        assert host in carriers[label], f"{environment}/{label} ran on {host}"
        assert branches[ENVIRONMENTS[environment]["branch"]].startswith(commit)


def test_the_shared_label_spreads_each_environments_runs_over_its_two_hosts(alt):
    lab = Lab.of(str(alt[0]))
    branches = lab.branch_heads()
    for environment in ("qa", "staging"):
        api = lab.api_for(environment)
        runs = [start(api, "fleet-report", f"etl-report-{environment}-etl", environment, "etl") for _ in range(10)]
        # A bound for a stall only: in `make test` this fleet runs at 1/64 of the CPU weight of
        # the lab's tests beside it (733 s for the module in CI22, 309 s alone).
        wait(api, runs, timeout=900)
        assert [flow_run.state for flow_run in runs] == ["COMPLETED"] * 10
        assert Counter(flow_run.report["host"] for flow_run in runs).keys() == {"alt-data05", "alt-data06"}
        commit = branches[ENVIRONMENTS[environment]["branch"]]
        for flow_run in runs:
            assert (flow_run.report["environment"], flow_run.report["commit"]) == (environment, commit)
            assert Layout.of(f"/opt/prefect/{environment}").commit_of(flow_run.report["cwd"]) == commit


def test_production_is_alone_on_its_server_and_staging_and_qa_share_another(alt):
    lab = Lab.of(str(alt[0]))
    production, staging = lab.api_for("production"), lab.api_for("staging")
    assert production.url.startswith("https://172.30.78.11:")
    assert staging.url.startswith("https://172.30.78.10:")
    assert lab.api_for("qa").url == staging.url
    distinct = production.auth != staging.auth and "" not in (production.auth, staging.auth)
    assert distinct, "each tier has a credential of its own"

    def names(api: Api, kind: str) -> list[str]:
        return sorted(item["name"] for item in api.call("POST", f"/{kind}/filter", {}))

    # Each server holds its environments' pools and deployments, and nothing of the other's.
    assert names(production, "work_pools") == ["production"]
    assert names(staging, "work_pools") == ["qa", "staging"]
    on_production, on_staging = names(production, "deployments"), names(staging, "deployments")
    assert on_production
    assert all("-production-" in name for name in on_production), on_production
    assert on_staging
    assert not [name for name in on_staging if "-production-" in name], on_staging
    # Staging's credential opens nothing on production's server.
    for kind in ("deployments", "block_documents", "work_pools"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            Api(production.url, staging.auth, lab.ca_file).call("POST", f"/{kind}/filter", {})
        assert refused.value.code == 401, kind
    # On each worker host, each environment's settings name its own tier's API and credential only.
    for host in WORKERS:
        for environment, own, other in (("production", production, staging), ("staging", staging, production)):
            settings = lab.ssh(host, f"cat /etc/prefect-worker/{environment}.env").stdout
            # Booleans first, so that a failure prints no credential.
            right = f'PREFECT_API_URL="{own.url}"' in settings and f'PREFECT_API_AUTH_STRING="{own.auth}"' in settings
            leak = other.auth in settings
            assert right, f"{host}: {environment}.env does not hold its own tier's API and credential"
            assert not leak, f"{host}: {environment}.env holds the other tier's credential"


def test_each_tiers_database_admits_its_own_server_alone(alt):
    """Each tier's server reaches its own database as its own role; with the other tier's password
    in hand, neither reaches the other's: pg_hba has no line for it (the password is not even asked)."""
    lab = Lab.of(str(alt[0]))
    secrets_dir = Path(lab.server["lab_state_dir"]) / "secrets"
    staging = ("prefect", "prefect", (secrets_dir / "database").read_text().strip())
    production = (TIER, TIER, (secrets_dir / "database-alt-production").read_text().strip())
    database_host = SERVER["alt-prefect-01"]["ansible_host"]

    def connect(host: str, database: str, user: str, password: str) -> str:
        python = f"$(ls -d {SERVER_VENVS}/*/bin/python | tail -1)"
        command = f"{python} -c {shlex.quote(CONNECT)} {database_host} {database} {user}"
        return lab.ssh(host, command, input=password).stdout.strip()

    assert connect("alt-prefect-01", *staging) == "connected"
    assert connect("alt-prefect-02", *production) == "connected"
    for host, other in (("alt-prefect-02", staging), ("alt-prefect-01", production)):
        got = connect(host, *other)
        assert got.startswith("refused"), f"{host} to {other[0]}: {got}"
        assert "pg_hba.conf" in got, f"{host} to {other[0]}: {got}"
    # The Prefect server of each tier runs on its own database, as its own role.
    for host, database in (("alt-prefect-01", "prefect"), ("alt-prefect-02", TIER)):
        settings = lab.ssh(host, "grep -E '^PREFECT_SERVER_DATABASE_(NAME|USER)=' /etc/prefect-server/server.env")
        assert settings.stdout.split() == [
            f'PREFECT_SERVER_DATABASE_NAME="{database}"',
            f'PREFECT_SERVER_DATABASE_USER="{database}"',
        ]


def test_a_staging_run_with_the_credential_it_has_is_refused_by_productions_server(alt, tmp_path):
    lab = Lab.of(str(alt[0]))
    production, staging = lab.api_for("production"), lab.api_for("staging")
    target = deployment(production, "fleet-report", "etl-report-production-etl")
    assert target, "production's deployment to try"

    def production_runs() -> int:
        return len(production.call("POST", "/flow_runs/filter", {"deployments": {"id": {"any_": [target["id"]]}}}))

    before = production_runs()
    nonce = secrets.token_hex(3)
    name, flow, path = f"probe-{nonce}", f"probe-flow-{nonce}", f"flows/probe/probe_{nonce}.py"
    entry = f"  - name: {name}\n    entrypoint: probe/probe_{nonce}.py:probe\n    labels: [atd-data02]\n"
    files = {path: PROBE.replace("FLOW_NAME", flow), "flows/deployments.yml": entry}
    on_main = push(lab, tmp_path, "main", f"Add {flow}", files=files)
    # Stall bounds: in `make test` this fleet runs at a small share of the CPU.
    wait_for(lambda: deployment(staging, flow, f"{name}-staging-atd-data02"), 900, "the staging probe's deployment")
    wait_for_checkouts(lab, "staging", on_main, 900)
    parameters = {"production_api": production.url, "deployment_id": target["id"]}
    (ran,) = wait(
        staging, [start(staging, flow, f"{name}-staging-atd-data02", "staging", "atd-data02", parameters)], 900
    )
    assert ran.state == "COMPLETED", describe(lab, ran)
    print("a staging run against production's server:", ran.report)
    controls = {what: got for what, got in ran.report.items() if what.startswith("control:")}
    assert set(controls.values()) == {"answered 200"}, controls
    reached = {what: got for what, got in ran.report.items() if what not in controls and got != "refused (401)"}
    assert not reached, f"a staging run reached production's server: {reached}"
    assert production_runs() == before, "no run of production's deployment was created"


def test_status_and_a_rolling_restart_of_the_servers_cover_both_tiers(alt):
    inventory = alt[0]
    lab = Lab.of(str(inventory))
    status = run(["make", "--no-print-directory", "status", f"INVENTORY={inventory}", "ARGS=--json"], timeout=900)
    document = json.loads(status.stdout)
    assert document["healthy"] is True, document.get("problems")
    rows = {(row["host"], row["environment"]): row["online"] for row in document["workers"]}
    assert rows == {(host, environment): True for host in WORKERS for environment in ENVIRONMENTS}, rows

    servers = [*SERVER, *TIER_SERVER]
    started = "systemctl show -p ActiveEnterTimestampMonotonic --value prefect-server"
    before = {host: lab.ssh(host, started).stdout.strip() for host in servers}
    playbook(inventory, "playbooks/rolling_restart.yml", "--limit", "prefect_server", timeout=1800)
    after = {host: lab.ssh(host, started).stdout.strip() for host in servers}
    assert [host for host in servers if after[host] == before[host]] == [], "every server restarted"
    # Each server paused and resumed its own tier's pools; each environment's runs go on.
    for environment in ENVIRONMENTS:
        assert lab.api_for(environment).call("GET", f"/work_pools/{environment}")["is_paused"] is False, environment
    runs = [start(lab.api_for(env), "fleet-report", f"etl-report-{env}-etl", env, "etl") for env in ENVIRONMENTS]
    for flow_run in runs:
        wait(lab.api_for(flow_run.environment), [flow_run], timeout=900)
    assert [flow_run.state for flow_run in runs] == ["COMPLETED"] * len(ENVIRONMENTS)


def worker_command_line(lab: Lab, host: str, environment: str) -> str:
    return " ".join(worker_process(lab, host, environment, "cmdline"))


def test_dropping_an_environment_and_a_label_converges_then_nothing_changes(alt):
    inventory = alt[0]
    lab = Lab.of(str(inventory))
    assert "--work-queue gis" in worker_command_line(lab, "alt-data06", "production")
    workers = {**WORKERS, "alt-data06": {**WORKERS["alt-data06"], "fleet_labels": ["etl"]}}
    write(inventory, {k: v for k, v in ENVIRONMENTS.items() if k != "qa"}, workers)

    second = playbook(inventory, "site.yml", timeout=1800)
    # The fleet-wide pools and queues came from one host, not from each.
    task = "Create or update each environment's work pool"
    assert len({host for _, host in task_results(second.stdout, "prefect_objects", task)}) == 1
    for host in WORKERS:
        for unit in ("prefect-worker@qa.service", "prefect-git-sync@qa.timer"):
            assert lab.ssh(host, f"systemctl is-active {unit}", check=False).stdout.strip() == "inactive", unit
            assert lab.ssh(host, f"systemctl is-enabled {unit}", check=False).stdout.strip() == "disabled", unit
        for gone in ("/etc/prefect-worker/qa.env", "/etc/prefect-worker/qa.deploy_key"):
            assert lab.ssh(host, f"test -e {gone}", check=False).returncode == 1, gone
        # The checkout stays (documented): runs may still use it, operators may inspect it.
        assert lab.ssh(host, "test -L /opt/prefect/qa/current", check=False).returncode == 0
        for environment in ("production", "staging"):
            assert lab.ssh(host, f"systemctl is-active prefect-worker@{environment}.service").stdout.strip() == "active"
    command = worker_command_line(lab, "alt-data06", "production")
    assert "--work-queue etl" in command
    assert "gis" not in command

    third = playbook(inventory, "site.yml", timeout=1800)
    changed = {host: c["changed"] for host, c in recaps(third.stdout).items() if c["changed"]}
    assert not changed, f"a third converge changed: {changed}\n{third.stdout[-4000:]}"
