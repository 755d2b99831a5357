"""The class actions store (proxy/class_store.py) and the gates' reader of it (proxy/class_watch.py), on real
files: atomic, shared by processes, concurrent writers, expiry, re-read on change at most once per interval."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
from pathlib import Path

import pytest

from classgate.policies.class_actions import ClassAction
from classgate.proxy.class_store import FILE, MAX_ACTIONS, ClassStore, ClassStoreError, read_actions
from classgate.proxy.class_watch import ClassTier

NOW = 1_800_000_000.0


def action(kind: str = "allow", group: str = "students", sites: tuple[str, ...] = ("edu.test",),
           starts: float = NOW, until: float = NOW + 600, id: str = "") -> ClassAction:
    return ClassAction(id=id, kind=kind, group=group, sites=sites, starts=starts,  # type: ignore[arg-type]
                       until=until, by="lan")


def test_add_end_active_and_restart(tmp_path: Path) -> None:
    store = ClassStore(tmp_path)
    first = store.add(action(), NOW)
    second = store.add(action("pause", sites=()), NOW)
    assert first.id and second.id and first.id != second.id
    # A new store on the same state dir (a restart, another process) sees the same, most restrictive first.
    assert ClassStore(tmp_path).active(NOW + 1) == (second, first)
    assert store.end(first.id, NOW + 2) == first
    assert ClassStore(tmp_path).active(NOW + 3) == (second,)
    with pytest.raises(KeyError):
        store.end(first.id, NOW + 4)


def test_file_is_atomic_json_with_mode_0640(tmp_path: Path) -> None:
    kept = ClassStore(tmp_path).add(action(id="fixed"), NOW)
    path = tmp_path / FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    data = json.loads(path.read_text())
    assert data == {"classgate_class_actions": 1, "actions": [kept.to_json()]}
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []  # no temp file left


@pytest.mark.parametrize(
    ("now", "active"),
    [(NOW - 1, 0), (NOW, 1), (NOW + 599.9, 1), (NOW + 600, 0)],
)
def test_expires_on_time_without_a_write(tmp_path: Path, now: float, active: int) -> None:
    store = ClassStore(tmp_path)
    store.add(action(), NOW)
    assert len(store.active(now)) == active


def test_expired_actions_are_dropped_at_the_next_write(tmp_path: Path) -> None:
    store = ClassStore(tmp_path)
    store.add(action(until=NOW + 10), NOW)
    store.add(action(until=NOW + 100), NOW + 20)
    assert len(read_actions(tmp_path / FILE)) == 1


def test_an_id_taken_is_replaced(tmp_path: Path) -> None:
    store = ClassStore(tmp_path)
    a = store.add(action(id="same"), NOW)
    b = store.add(action(id="same"), NOW)
    assert a.id == "same" and b.id != "same"


def test_the_number_of_actions_is_bounded(tmp_path: Path) -> None:
    records = [action(id=f"a{i}").to_json() for i in range(MAX_ACTIONS)]
    (tmp_path / FILE).write_text(json.dumps({"classgate_class_actions": 1, "actions": records}))
    with pytest.raises(ClassStoreError, match="end some first"):
        ClassStore(tmp_path).add(action(), NOW)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "class-actions.json: Expecting property name"),
        ('{"actions": []}', "not a class actions file of format 1"),
        ('{"classgate_class_actions": 1, "actions": {}}', "must be a list"),
        ('{"classgate_class_actions": 1, "actions": [{"id": "x"}]}', "not a class action"),
        ("[]", "class-actions.json"),
    ],
)
def test_broken_file(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / FILE).write_text(content)
    with pytest.raises(ClassStoreError, match=message):
        ClassStore(tmp_path).active(NOW)


def _add_many(state_dir: str, worker: int, count: int) -> None:
    store = ClassStore(Path(state_dir))
    for i in range(count):
        store.add(action(id=f"w{worker}-{i}"), NOW)


def test_concurrent_writers_all_land(tmp_path: Path) -> None:
    """Four processes writing 25 actions each at the same time: without the lock, read-change-write races
    lose actions (each writer renames its own list over the others')."""
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_add_many, args=(str(tmp_path), w, 25)) for w in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
        assert w.exitcode == 0
    ids = {a.id for a in ClassStore(tmp_path).active(NOW)}
    assert ids == {f"w{w}-{i}" for w in range(4) for i in range(25)}


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_tier_rereads_a_changed_file_at_most_once_per_interval(tmp_path: Path) -> None:
    ticks = FakeMonotonic()
    tier = ClassTier(tmp_path, check_every=1.0, monotonic=ticks)
    assert len(tier.current()) == 0
    store = ClassStore(tmp_path)
    kept = store.add(action(), NOW)
    ticks.now = 0.5
    assert len(tier.current()) == 0  # not looked at yet: within the interval
    ticks.now = 1.0
    assert list(tier.current()) == [kept]
    store.end(kept.id, NOW)
    ticks.now = 2.0
    assert len(tier.current()) == 0


def test_tier_keeps_what_it_read_when_the_file_breaks(tmp_path: Path) -> None:
    ticks = FakeMonotonic()
    tier = ClassTier(tmp_path, monotonic=ticks)
    kept = ClassStore(tmp_path).add(action("pause", sites=()), NOW)
    assert list(tier.current()) == [kept]
    (tmp_path / FILE).write_text('{"classgate_class_actions": 1, "actions": [{"kind": "pause"}]}')
    ticks.now = 5.0
    assert list(tier.current()) == [kept]  # a torn edit does not lift a pause
    os.unlink(tmp_path / FILE)
    ticks.now = 10.0
    assert len(tier.current()) == 0  # deleting the file ends every action


def test_tier_without_a_state_dir_has_no_actions(tmp_path: Path) -> None:
    assert len(ClassTier(None).current()) == 0
    assert ClassTier(tmp_path).in_force(NOW) == []


def test_in_force_lists_group_and_kind(tmp_path: Path) -> None:
    store = ClassStore(tmp_path)
    store.add(action(), NOW)
    store.add(action("pause", group="class-10a", sites=()), NOW)
    store.add(action("block", until=NOW + 1), NOW)
    assert sorted(ClassTier(tmp_path).in_force(NOW + 5)) == [("class-10a", "pause"), ("students", "allow")]
