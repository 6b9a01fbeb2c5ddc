"""`prefect-fleet git-sync ENVIRONMENT`: move an environment's checkout to the head of its branch.

Run by prefect-git-sync@ENVIRONMENT.service (as the environment's service user) with the
environment's settings: FLEET_REPO, FLEET_BRANCH, FLEET_ENV_DIR, FLEET_PREFECT_VERSION, and
optionally FLEET_REQUIREMENTS (flows/requirements.txt), FLEET_KEEP_TREES (3), FLEET_UV (the uv
that builds the venvs) and uv's own UV_* settings (where it installs from).

A failed fetch (remote unreachable) changes nothing and exits non-zero, so that the unit shows
failed; so does a commit whose requirements file leads out of the checkout through a symbolic link
(refused before it becomes current). Why the last sync failed stays in the environment's sync-error
file, which the fleet's status shows. Force-pushes are followed (+refspec); local edits in a tree
are left behind in a fresh tree. Prints "updated <old> -> <new>" or "unchanged <commit>", and "venv
<hash>" when the environment's virtualenv changed (a running worker keeps the old interpreter: the
restart is asked for with a marker the sync's hook, as root, acts on).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from prefect_fleet_host.layout import SHARED_STORE, Layout, escaping_link, swap_link


class SyncError(Exception):
    pass


def git(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=check)


def requirements_hash(version: str, constraints: Path | None, requirements: Path) -> str:
    """The key of a virtualenv in the store: Prefect's version, the constraints and the flows'
    requirements (the same bytes the earlier shell version hashed, so that hosts keep their venvs)."""
    digest = hashlib.sha256(f"{version}\n".encode())
    for path in (constraints, requirements):
        if path is not None and path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def fetch(layout: Layout, repo: str, branch: str) -> str:
    """Update the mirror from the remote; return the branch's head commit."""
    if not layout.mirror.is_dir():
        git("init", "-q", "--bare", str(layout.mirror))
        git("-C", str(layout.mirror), "config", "gc.auto", "0")
    git("-C", str(layout.mirror), "config", "remote.origin.url", repo)
    fetched = git(
        "-C", str(layout.mirror), "fetch", "-q", "--no-tags", "origin", f"+refs/heads/{branch}:refs/heads/{branch}",
        check=False,
    )  # fmt: skip
    if fetched.returncode != 0:
        sys.stderr.write(fetched.stderr)
        raise SyncError(f"fetching {branch} from {repo} failed; keeping the current checkout")
    return git("-C", str(layout.mirror), "rev-parse", f"refs/heads/{branch}^{{commit}}").stdout.strip()


def check_out(layout: Layout, commit: str, guarded: Iterable[str] = ()) -> str:
    """Make `current` a clean checkout of `commit`; return what to print. A commit in which one of
    the `guarded` paths leads out of the checkout through a symbolic link is refused before it
    becomes current (SyncError): nothing of it runs, the checkout stays where it was."""
    old = ""
    if layout.current.is_symlink():
        old = git("-C", str(layout.current), "rev-parse", "HEAD", check=False).stdout.strip()
    # A local edit of a tracked file also earns a fresh tree; untracked files do not (the flows' own
    # __pycache__ directories would otherwise make every tick a new tree under the runs in flight).
    dirty = old and git("-C", str(layout.current), "status", "--porcelain", "--untracked-files=no", check=False).stdout
    if old == commit and not dirty:
        return f"unchanged {commit}"
    tree, staging = layout.new_tree(commit), layout.incoming()
    shutil.rmtree(staging, ignore_errors=True)
    git("clone", "-q", "--no-checkout", str(layout.mirror), str(staging))
    git("-C", str(staging), "-c", "advice.detachedHead=false", "checkout", "-q", "--detach", commit)
    escapes = [link for link in (escaping_link(staging, path) for path in guarded) if link]
    if escapes:
        shutil.rmtree(staging, ignore_errors=True)
        raise SyncError(
            f"commit {commit[:12]} refused: {', '.join(escapes)} leads out of the checkout (a symbolic link);"
            f" the checkout stays at {old[:12] or 'none'}"
        )
    os.rename(staging, tree)
    swap_link(tree, layout.current)
    return f"updated {old or 'none'} -> {commit}"


def build_venv(venv: Path, version: str, requirements: Path, environ: Mapping[str, str]) -> None:
    """A venv cannot move (its scripts name their interpreter's path): it is built in place and
    marked complete last; an unmarked one is a leftover of an interrupted build.

    uv builds it (FLEET_UV, else the uv on the PATH): 1.75x faster than pip on a 2-core host, as it
    installs and compiles on every core (docs/benchmarks.md). Where it installs from, the settings
    say in uv's own variables (UV_CONSTRAINT, UV_FIND_LINKS and UV_OFFLINE, UV_INDEX_URL, ...: an
    index URL may carry a credential, so it stays out of the command line). Whatever they say, uv
    reads no configuration file (the current directory may be a branch's checkout, whose
    pyproject.toml or uv.toml must not choose the index), never downloads a Python, and keeps no
    cache (a temporary one per build: the sync's sandbox keeps the service user's home read-only);
    it byte-compiles what it installs (a service user that cannot write the venv would otherwise
    compile every module on every start)."""
    if (venv / ".complete").exists():
        return
    uv = environ.get("FLEET_UV") or shutil.which("uv", path=environ.get("PATH"))
    if not uv:
        raise SyncError("no uv to build the venv with: FLEET_UV is not set and there is no uv on the PATH")
    env = {
        **environ,
        "UV_NO_CONFIG": "1",
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_NO_CACHE": "1",
        "UV_COMPILE_BYTECODE": "1",
    }
    python = shutil.which("python3", path=environ.get("PATH")) or "python3"
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([uv, "venv", "--quiet", "--python", python, str(venv)], env=env, check=True)
    install = [uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), f"prefect=={version}"]
    if requirements.is_file():
        install += ["--requirement", str(requirements)]
    subprocess.run(install, env=env, check=True)
    (venv / ".complete").touch()


def paths_in_use() -> set[str]:
    """Every process's working directory and program: what a flow run in flight still uses."""
    used = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            used.add(os.readlink(proc / "cwd"))
        try:
            program = (proc / "cmdline").read_bytes().split(b"\0", 1)[0].decode(errors="replace")
        except OSError:
            continue
        if program:
            used.add(program)
    return used


def keep_newest(directory: Path, count: int, protected: Iterable[str], in_use: set[str]) -> None:
    """Keep the `count` newest directories of `directory` (by modification time), the protected
    ones and every one a process still works in or runs from; remove the rest."""
    protected = {str(p) for p in protected if p}
    entries = [p for p in directory.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")]
    entries.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for path in entries[count:]:
        name = str(path)
        if name in protected or name in in_use or any(used.startswith(name + "/") for used in in_use):
            continue
        shutil.rmtree(path, ignore_errors=True)


def sync(settings: dict[str, str]) -> list[str]:
    """One sync of the environment `settings` describe; returns the lines to print."""
    try:
        repo, branch = settings["FLEET_REPO"], settings["FLEET_BRANCH"]
        layout, version = Layout.of(settings["FLEET_ENV_DIR"]), settings["FLEET_PREFECT_VERSION"]
    except KeyError as missing:
        raise SyncError(f"{missing.args[0]} is not set (the environment's settings file sets it)") from None
    keep = int(settings.get("FLEET_KEEP_TREES", "3"))
    layout.trees.mkdir(parents=True, exist_ok=True)
    layout.store.mkdir(parents=True, exist_ok=True)
    commit = fetch(layout, repo, branch)
    requirements_path = settings.get("FLEET_REQUIREMENTS", "flows/requirements.txt")
    lines = [check_out(layout, commit, [requirements_path])]

    # The flows' virtualenv: rebuilt only when the requirements (or Prefect's pin) change. The lock
    # keeps a `prefect-fleet git-sync` run by hand beside the unit's from building at once.
    with open(layout.store / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        requirements = layout.current / requirements_path
        constraints = Path(settings["UV_CONSTRAINT"]) if settings.get("UV_CONSTRAINT") else None
        key = requirements_hash(version, constraints, requirements)
        venv = layout.store / key
        build_venv(venv, version, requirements, settings)
        previous = layout.current_venv()
        if previous != venv:
            swap_link(venv, layout.venv)
            lines.append(f"venv {key}")
            if previous is not None:
                layout.restart_marker.touch()

        # Keep the newest trees and venvs, and every one that a process (a flow run in flight,
        # handed off by a restarted worker or not) still works in or runs from; drop the rest.
        # Venvs: the current one and the one before (a restarted worker's runs may still use it).
        in_use = paths_in_use()
        keep_newest(layout.trees, keep, [str(layout.current_tree() or "")], in_use)
        keep_newest(layout.store, 2, [str(venv)], in_use)
    return lines


def prune_shared_store(root: Path) -> None:
    """Remove from the store of the layout before (<root>/_venvs, shared by environments) every
    venv that no environment links to and no process uses, then the store once empty. Run as root
    by the sync's hook: no environment's user may write there."""
    store = root / SHARED_STORE
    if not store.is_dir():
        return
    linked = [str(Layout.of(d).current_venv() or "") for d in root.iterdir() if d.is_dir()]
    keep_newest(store, 0, linked, paths_in_use())
    if not any(p for p in store.iterdir() if p.name != ".lock"):
        (store / ".lock").unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            store.rmdir()


def main(environment: str) -> int:
    os.umask(0o027)
    # Why the last sync failed, for the fleet's status (which shows it beside a stale checkout).
    record = Layout.of(os.environ["FLEET_ENV_DIR"]).sync_error_file if os.environ.get("FLEET_ENV_DIR") else None
    try:
        for line in sync(dict(os.environ)):
            print(line, flush=True)
    except (SyncError, subprocess.CalledProcessError) as error:
        print(f"prefect-fleet git-sync[{environment}]: {error}", file=sys.stderr)
        if record is not None:
            with contextlib.suppress(OSError):
                record.write_text(f"{error}\n")
        return 1
    if record is not None:
        record.unlink(missing_ok=True)
    return 0
