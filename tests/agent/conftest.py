"""Fixtures for the sync tests; the helpers they use are in sync_helpers.py."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent.sync_helpers import (
    LISTS_V1,
    LISTS_V2,
    POLICY_V1,
    POLICY_V2,
    DepartmentTemplate,
    Gateway,
    RepoServer,
    cli,
    write_policy,
)


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[RepoServer] = []

    def start(root: Path) -> RepoServer:
        servers.append(RepoServer(root))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


@pytest.fixture(scope="session")
def department_template(tmp_path_factory: pytest.TempPathFactory) -> DepartmentTemplate:
    base = tmp_path_factory.mktemp("department")
    repo = base / "work"
    cli("department", "init", str(repo))
    cli("department", "publish", str(repo), "--policy", str(write_policy(base / "policy-v1", POLICY_V1, LISTS_V1)))
    shutil.copytree(repo, base / "v1", symlinks=True)
    cli("department", "publish", str(repo), "--policy", str(write_policy(base / "policy-v2", POLICY_V2, LISTS_V2)))
    shutil.copytree(repo, base / "v2", symlinks=True)
    return DepartmentTemplate(base)


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator[Any]:
    made: list[Gateway] = []

    def make(url: str, trust: Path, overlay: Path | None = None, name: str = "gw", **kw: Any) -> Gateway:
        made.append(Gateway(tmp_path / name, url, trust, overlay, **kw))
        return made[-1]

    yield make
    for g in made:
        g.close()
