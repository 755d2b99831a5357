"""Shared pieces of the list-subscription tests: the real lists, a test policy subscribing to them, the servers.

A module of its own (not conftest.py), so the tests import it by a name no other folder shares.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.agent.lists_upstream import ListUpstream

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
GAMBLING = SHARED / "hostsvn" / "gambling"
UT1 = SHARED / "ut1"

POLICY = """\
classgate: 1
name: subscriptions-test
sources:
  hostsvn_gambling: {format: domains, url: "{U}/hostsvn/gambling/domain.txt", path: lists/hostsvn/gambling/domain.txt}
  hostsvn_gambling_vn: {format: hosts, url: "{U}/hostsvn/gambling/hosts-VN", path: lists/hostsvn/gambling/hosts-VN}
  hostsvn_threat_vn: {format: adblock, url: "{U}/hostsvn/threat/filter-VN.txt", path: lists/hostsvn/threat/filter-VN.txt}
  ut1: {format: ut1, url: "{U}/ut1-archives", path: lists/ut1}
  own: {format: domains, path: own.txt}
categories:
  gambling: {include: [ut1/gambling, hostsvn_gambling, hostsvn_gambling_vn]}
  threat: {include: [hostsvn_threat_vn]}
  bank: {include: [ut1/bank]}
  local: {include: [own]}
rules:
  - {name: harmful, action: block, categories: [gambling, threat]}
"""


def need_shared_data() -> None:
    if not (GAMBLING / "domain.txt").is_file() or not (UT1 / "gambling" / "domains").is_file():
        pytest.skip(f"the hostsVN and UT1 lists are not in {SHARED} (see hostsvn/SOURCE.md, ut1/SOURCE.md); "
                    "only these tests need them, never the product")


def start_upstream() -> ListUpstream:
    """The upstream: ../shared/data as UT1 and hostsVN publish it (skips the test when it is absent)."""
    need_shared_data()
    return ListUpstream(SHARED)


def start_mirror(folder: Path) -> ListUpstream:
    """A mirror of a Department's lists folder: BASE/lists/... (here: ../shared/data as `lists`)."""
    need_shared_data()
    root = folder / "mirror-root"
    root.mkdir()
    (root / "lists").symlink_to(SHARED, target_is_directory=True)
    return ListUpstream(root)


def write_policy(folder: Path, upstream_url: str, text: str = POLICY) -> Path:
    """The test policy in `folder`, subscribed to `upstream_url`, with one list of its own (no url)."""
    (folder / "own.txt").write_text("school-own.example\n")
    path = folder / "department.yaml"
    path.write_text(text.replace("{U}", upstream_url))
    return path
