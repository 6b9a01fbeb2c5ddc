"""Checks shared by the roles' molecule verifiers. The bad-input one applies a role with one invalid
input, as extra vars, and requires that it fails with a message naming the problem before any file
on the host changed."""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

import pytest
import testinfra

from lab import prefect_api
from lab.ansible import JSON_CALLBACK, json_report
from lab.ansible import playbook as run_playbook

# Everything a role may write to; /var/lib/systemd changes on its own (timers, journal).
WATCHED = "/etc /opt /srv /usr/local /var/lib /home"


def snapshot(prune: tuple[str, ...] = ("/var/lib/systemd",)) -> str:
    """A command printing a hash of every watched file's path, time, size, mode and owner, except
    under `prune` (directories that change on their own)."""
    pruned = " -o ".join(f"-path {p}" for p in prune)
    return (
        f"find {WATCHED} -xdev \\( {pruned} \\) -prune -o -printf '%p %T@ %s %m %u\\n' 2>/dev/null | sort | sha256sum"
    )


SNAPSHOT = snapshot()


def scenario_host(group: str) -> testinfra.host.Host:
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    hosts = testinfra.get_hosts([f"ansible://{group}?ansible_inventory={inventory}"])
    assert len(hosts) == 1, f"expected one host in group {group}, found {len(hosts)}"
    return hosts[0]


def other_messages(cases: dict[str, tuple[dict, str]], case: str) -> list[str]:
    """The messages of the other cases of a bad-input table: rules that hold in `case`, which its
    failure must not print. A bare variable name (what a type error of the argument spec is
    checked by) and messages that are part of each other say nothing about which rule failed and
    are left out."""
    message = cases[case][1]
    return sorted(
        {m for c, (_, m) in cases.items() if c != case and " " in m and m not in message and message not in m}
    )


def assert_rejected_without_change(
    host, playbook: Path, extra_vars: dict, message: str, not_printed: list[str] = (), state: str = SNAPSHOT
) -> None:
    """Apply `playbook` with `extra_vars`: it must fail, print `message`, print none of
    `not_printed` (rules that hold), change nothing and leave the host's `state` (a command's
    output: by default a hash of every file a role may write) as it was."""
    before = host.check_output(state)
    result = run_playbook(
        os.environ["MOLECULE_INVENTORY_FILE"],
        str(playbook),
        "-e",
        json.dumps(extra_vars),
        check=False,
        env={"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default"},
        cwd=Path.cwd(),
    )
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, f"the role accepted invalid input {extra_vars}\n{result.stdout[-3000:]}"
    assert message in output, f"expected {message!r} in the failure\n{result.stdout[-3000:]}{result.stderr[-2000:]}"
    printed = [other for other in not_printed if other in output]
    assert not printed, f"the failure also printed rules that hold: {printed}\n{result.stdout[-3000:]}"
    assert "changed=0" in output, "no recap"
    assert not re.search(r"changed=[1-9]", output), "the failed run changed something"
    assert host.check_output(state) == before, "the host's state changed"


def role_status(role: str, group: str, fact: str) -> dict[str, dict]:
    """Run `role`'s status tasks (tasks_from: status.yml) on the scenario's hosts of `group`, and
    return the `fact` they set, by host."""
    result = run_playbook(
        os.environ["MOLECULE_INVENTORY_FILE"],
        str(Path(__file__).resolve().parent / "data" / "role_status.yml"),
        "-e",
        json.dumps({"status_role": role, "status_hosts": group}),
        env=JSON_CALLBACK,
        cwd=Path.cwd(),
    )
    output = json_report(result.stdout)
    return {
        host: answer["ansible_facts"][fact]
        for play in output["plays"]
        for task in play["tasks"]
        for host, answer in task["hosts"].items()
        if fact in answer.get("ansible_facts", {})
    }


class HostApi:
    """The Prefect API as a host sees it: lab/prefect_api.py (the tests' one API client, which
    retries what Prefect's client retries) run on `host` with its python3, the URL and credential
    read there from `env_file` (a 0600 settings file) unless `url` is given."""

    SOURCE = Path(prefect_api.__file__).read_text()

    def __init__(self, host, env_file: str | None = None, url: str | None = None) -> None:
        self.host, self.env_file, self.url = host, env_file, url

    def request(self, method: str, path: str, body=None) -> tuple[int, str]:
        """(status, text) of one call."""
        out = self.host.check_output(self.command(method, path, body))
        status, _, text = out.partition("\n")
        return int(status), text

    def command(self, method: str, path: str, body=None) -> str:
        """The shell command of one call (for a state a bad-input check compares)."""
        args = [*(["--env-file", self.env_file] if self.env_file else []), *(["--url", self.url] if self.url else [])]
        args += [method, path, *([json.dumps(body)] if body is not None else [])]
        return f"python3 -c {shlex.quote(self.SOURCE)} " + " ".join(shlex.quote(a) for a in args)

    def __call__(self, method: str, path: str, body=None):
        """The decoded answer of a call that must succeed."""
        status, text = self.request(method, path, body)
        assert status < 400, f"{method} {path}: {status} {text[:500]}"
        return json.loads(text) if text.strip() else None


def journal_on_failure(group: str, units: str):
    """A pytest_runtest_makereport hook that attaches `journalctl -u UNITS` of the group's host to
    every failed test's report (assign it to that name in a conftest)."""

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(item, call):  # noqa: ARG001 -- pytest's hook signature
        outcome = yield
        report = outcome.get_result()
        if report.when == "call" and report.failed:
            journal = scenario_host(group).run(f"journalctl -u '{units}' --no-pager -n 80")
            report.sections.append((f"journalctl -u {units}", journal.stdout))

    return pytest_runtest_makereport
