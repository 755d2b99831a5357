"""Where teachers' class actions live: `<state>/class-actions.json`, shared by every process of a gateway.

Writers (the CLI, the web console) take an exclusive `fcntl.flock` on `<state>/class-actions.lock`, read,
change and write the file atomically (temp file + rename), so two teachers acting at the same instant both
land. Readers (every proxy worker, through classgate.proxy.class_watch) never lock: a rename gives them the
old file or the new one. Expired actions are dropped whenever the file is written; readers skip them by
time anyway, so an action ends on time whether or not anything writes.

    {"classgate_class_actions": 1, "actions": [{"id": ..., "kind": ..., "group": ..., ...}]}
"""

from __future__ import annotations

import json
import secrets
from dataclasses import replace
from pathlib import Path
from typing import Final

from classgate.policies.atomicfile import atomic_write
from classgate.policies.class_actions import ClassAction, ClassActionError, ClassActions
from classgate.policies.filelock import exclusive_lock

FILE: Final = "class-actions.json"
LOCK_FILE: Final = "class-actions.lock"
FORMAT: Final = 1
# Readable by the gateway's user and group (the proxy workers, the console); teachers' names are in it.
FILE_MODE: Final = 0o640
# Far above any school's need (a few dozen at once); a bound on what a reader parses per change.
MAX_ACTIONS: Final = 1000


class ClassStoreError(Exception):
    """The class actions cannot be read or written (says which file and why)."""


def read_actions(path: Path) -> ClassActions:
    """The actions in `path` (none when it does not exist); raises ClassStoreError for a broken file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return ClassActions()
    except OSError as exc:
        raise ClassStoreError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = json.loads(raw)
        if data.get("classgate_class_actions") != FORMAT:
            raise ClassStoreError(f"{path}: not a class actions file of format {FORMAT}")
        records = data["actions"]
        if not isinstance(records, list) or len(records) > MAX_ACTIONS:
            raise ClassStoreError(f"{path}: `actions` must be a list of at most {MAX_ACTIONS}")
        return ClassActions(ClassAction.from_json(r) for r in records)
    except (ValueError, KeyError, AttributeError, ClassActionError) as exc:
        raise ClassStoreError(f"{path}: {exc}") from None


class ClassStore:
    """The class actions of one state dir: what the CLI and the console call."""

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / FILE
        self._lock_path = Path(state_dir) / LOCK_FILE

    def add(self, action: ClassAction, now: float) -> ClassAction:
        """Keep `action` (its id replaced by a fresh one if taken) and return it as kept."""
        with exclusive_lock(self._lock_path, FILE_MODE, error=ClassStoreError):
            actions = [a for a in read_actions(self.path) if a.until > now]
            if len(actions) >= MAX_ACTIONS:
                raise ClassStoreError(f"{self.path}: {MAX_ACTIONS} class actions are in force; end some first")
            taken = {a.id for a in actions}
            while not action.id or action.id in taken:
                action = replace(action, id=new_id())
            self._write([*actions, action])
        return action

    def end(self, action_id: str, now: float) -> ClassAction:
        """End action `action_id` now; returns it as it was. Raises KeyError when no such action is in force."""
        with exclusive_lock(self._lock_path, FILE_MODE, error=ClassStoreError):
            actions = [a for a in read_actions(self.path) if a.until > now]
            ended = next((a for a in actions if a.id == action_id), None)
            if ended is None:
                raise KeyError(action_id)
            self._write([a for a in actions if a.id != action_id])
        return ended

    def get(self, action_id: str, now: float) -> ClassAction | None:
        return next((a for a in self.active(now) if a.id == action_id), None)

    def active(self, now: float) -> tuple[ClassAction, ...]:
        """The actions in force at `now`, most restrictive first."""
        return read_actions(self.path).active(now)

    def _write(self, actions: list[ClassAction]) -> None:
        body = {"classgate_class_actions": FORMAT, "actions": [a.to_json() for a in actions]}
        try:
            atomic_write(self.path, (json.dumps(body, indent=1, ensure_ascii=False) + "\n").encode(), FILE_MODE)
        except OSError as exc:
            raise ClassStoreError(f"{self.path}: cannot write: {exc.strerror or exc}") from None


def new_id() -> str:
    """A short id a teacher can type (`classgate class end 3f9a1c2b`)."""
    return secrets.token_hex(4)
