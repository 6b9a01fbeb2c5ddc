"""The lab's flows repository, as a developer pushing to it: clone a branch, commit on it, push,
cherry-pick a change to another branch, revert a commit, drop a deployment from the spec."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

GIT = ["git", "-c", "user.name=fleet-tests", "-c", "user.email=tests@prefect-fleet.invalid"]


def git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    return subprocess.run(
        [*GIT, "-C", str(repo), *args], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def clone(lab, tmp_path: Path, branch: str) -> Path:
    repo = tmp_path / f"clone-{branch}-{time.monotonic_ns()}"
    subprocess.run(
        ["git", "clone", "-q", "--branch", branch, lab.server["fleet_flows_repo"], str(repo)],
        env=lab.git_env(),
        check=True,
    )
    return repo


def push(
    lab, tmp_path: Path, branch: str, message: str, force: bool = False, files: dict[str, str] | None = None
) -> str:
    """Commit on top of (or, with force, beside) `branch` of the lab remote; return the new head.
    `files` ({path: text}) are appended to; by default flows/PUSHED.md is written."""
    repo = clone(lab, tmp_path, branch)
    if files is None:
        # A nonce: the same message pushed twice (a test run again on one lab) is still a change.
        (repo / "flows" / "PUSHED.md").write_text(f"{message}\n{time.time_ns()}\n")
    for path, text in (files or {}).items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        with (repo / path).open("a") as handle:
            handle.write(text)
    git(repo, "add", "-A")
    if force:  # rewrite the branch head: the new commit does not descend from the old one
        git(repo, "commit", "-q", "--amend", "-m", message)
    else:
        git(repo, "commit", "-q", "-m", message)
    git(repo, "push", "-q", *(["--force"] if force else []), "origin", branch, env=lab.git_env())
    return git(repo, "rev-parse", "HEAD")


def cherry_pick(lab, tmp_path: Path, commit: str, source: str, target: str) -> str:
    """The change of `commit` (on `source`) merged into `target`, as a PR of that one change is."""
    repo = clone(lab, tmp_path, target)
    git(repo, "fetch", "-q", "origin", source, env=lab.git_env())
    git(repo, "cherry-pick", commit)
    git(repo, "push", "-q", "origin", target, env=lab.git_env())
    return git(repo, "rev-parse", "HEAD")


def revert(lab, tmp_path: Path, branch: str, commit: str) -> str:
    """Undo `commit` on `branch` by a commit of its own (git revert), as a developer does."""
    repo = clone(lab, tmp_path, branch)
    git(repo, "revert", "--no-edit", commit)
    git(repo, "push", "-q", "origin", branch, env=lab.git_env())
    return git(repo, "rev-parse", "HEAD")


def remove(lab, tmp_path: Path, branch: str, name: str, path: str | None = None) -> str:
    """Drop deployment `name` (the last entry of the spec, as the tests append it) and its file."""
    repo = clone(lab, tmp_path, branch)
    spec = repo / "flows" / "deployments.yml"
    text = spec.read_text()
    spec.write_text(text[: text.index(f"  - name: {name}\n")])
    if path:
        git(repo, "rm", "-q", path)
    git(repo, "commit", "-q", "-am", f"Remove {name}")
    git(repo, "push", "-q", "origin", branch, env=lab.git_env())
    return git(repo, "rev-parse", "HEAD")
