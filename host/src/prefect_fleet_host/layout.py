"""The layout of an environment's checkout on a worker host; the one place that writes and reads it.

Under an environment's directory (for example /opt/prefect/production):

    mirror.git/          bare mirror of the remote; only the git sync writes it
    trees/<commit>-<n>/  one full checkout per update; never modified once in use
    current -> trees/... the checkout workers and flow runs use, swapped atomically (rename(2))
    venv -> venvs/<hash> the flows' virtualenv, swapped atomically too
    venvs/<hash>/        the environment's virtualenvs, one per requirements content
    .restart-worker      the venv changed under the worker: the sync's hook restarts it
    .deployed-commit     the commit whose deployments this host registered last (registering host)
    deploy-state.json    the outcome of that registration
    sync-error           why the last sync failed (absent after a sync that succeeded)

All of it belongs to the environment's own service user (prefect-<environment>): no environment
runs code another wrote. Beside the environments, <root>/_venvs/<hash>/ is the store of the layout
before (one venv per requirements content, shared by environments): each sync's hook, as root,
removes what no environment uses any more (environment names cannot contain "_", so no
environment's directory can be called that).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

# The venvs of the layout before per-environment users, shared by environments (see above).
SHARED_STORE = "_venvs"


@dataclass(frozen=True)
class Layout:
    env_dir: Path

    @classmethod
    def of(cls, env_dir: str | os.PathLike) -> Layout:
        return cls(Path(env_dir))

    @property
    def environment(self) -> str:
        return self.env_dir.name

    @property
    def mirror(self) -> Path:
        return self.env_dir / "mirror.git"

    @property
    def trees(self) -> Path:
        return self.env_dir / "trees"

    @property
    def current(self) -> Path:
        return self.env_dir / "current"

    @property
    def venv(self) -> Path:
        return self.env_dir / "venv"

    @property
    def store(self) -> Path:
        """The environment's virtualenvs."""
        return self.env_dir / "venvs"

    @property
    def restart_marker(self) -> Path:
        return self.env_dir / ".restart-worker"

    @property
    def deployed_marker(self) -> Path:
        return self.env_dir / ".deployed-commit"

    @property
    def deploy_state_file(self) -> Path:
        return self.env_dir / "deploy-state.json"

    @property
    def sync_error_file(self) -> Path:
        return self.env_dir / "sync-error"

    def sync_error(self) -> str | None:
        try:
            return self.sync_error_file.read_text().strip() or None
        except OSError:
            return None

    def new_tree(self, commit: str) -> Path:
        """Where a fresh checkout of `commit` goes: a name no earlier tree has."""
        return self.trees / f"{commit}-{time.time_ns()}"

    def incoming(self) -> Path:
        """Where a tree is checked out before it is renamed into place."""
        return self.trees / f".incoming-{os.getpid()}"

    def current_tree(self) -> Path | None:
        """The tree `current` points at, or None before the first sync."""
        try:
            return Path(os.readlink(self.current))
        except OSError:
            return None

    def current_commit(self) -> str | None:
        """The commit of the current checkout, from the tree's name (no git, no access to the
        tree itself: root reads it without running git in the service's files)."""
        tree = self.current_tree()
        return commit_of_tree(tree.name) if tree else None

    def commit_of(self, path: str | os.PathLike) -> str | None:
        """The commit of the tree that `path` (a file or directory in a checkout, such as a flow
        run's working directory) lies in, or None when it lies in none of this environment's trees."""
        try:
            relative = Path(path).relative_to(self.trees)
        except ValueError:
            return None
        return commit_of_tree(relative.parts[0]) if relative.parts else None

    def current_venv(self) -> Path | None:
        try:
            return Path(os.readlink(self.venv))
        except OSError:
            return None

    def deployed_commit(self) -> str | None:
        try:
            return self.deployed_marker.read_text().strip() or None
        except OSError:
            return None

    def deploy_state(self) -> dict:
        try:
            return json.loads(self.deploy_state_file.read_text())
        except (OSError, ValueError):
            return {}

    def describe(self) -> dict:
        """What the layout holds now, as the CLI's `checkout` prints it."""
        tree, venv = self.current_tree(), self.current_venv()
        return {
            "environment": self.environment,
            "commit": self.current_commit(),
            "tree": str(tree) if tree else None,
            "venv": venv.name if venv else None,
            "deployed_commit": self.deployed_commit(),
        }


def escaping_link(root: Path, relative: str | os.PathLike) -> str | None:
    """How `relative` (a path in a checkout: a spec, a requirements or .env file) leads out of
    `root` through a symbolic link, as "link -> target", or None when it stays inside. A branch
    may carry any link; followed, a link to /etc/prefect-worker/<env>.env would hand that file to
    whoever reads the path (uv printing its lines, the registrar publishing them)."""
    if (root / relative).resolve().is_relative_to(root.resolve()):
        return None
    path = root
    for part in Path(relative).parts:
        path = path / part
        if path.is_symlink():
            return f"{path.relative_to(root)} -> {os.readlink(path)}"
    return str(relative)


def commit_of_tree(name: str) -> str:
    """trees/<commit>-<n> -> <commit>."""
    return name.split("-", 1)[0]


def swap_link(target: str | os.PathLike, link: Path) -> None:
    """Point `link` at `target` in one rename: a reader sees the old target or the new one."""
    temporary = link.with_name(f"{link.name}.new.{os.getpid()}")
    if temporary.is_symlink() or temporary.exists():
        temporary.unlink()
    os.symlink(target, temporary)
    os.replace(temporary, link)
