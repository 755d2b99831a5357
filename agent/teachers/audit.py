"""The audit log of teachers' actions: who did what to which group, from when until when.

JSON lines in `<state>/audit/teacher-actions.log`, appended under an exclusive lock (the CLI and the web
console may write at the same instant), rotated by size: past `max_bytes` the file becomes `.1`, `.1`
becomes `.2` ... and the oldest beyond `keep` is deleted, so the log's size is bounded. What a line holds is
the teacher's account, the action and its time box; never a device's address, never a student.

    {"at": "2026-11-23T09:02:11+07:00", "event": "start", "by": "lan", "id": "3f9a1c2b", "kind": "allow",
     "group": "students", "sites": ["example.com"], "from": "...", "until": "..."}
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final, Literal

from classgate.policies.class_actions import ClassAction
from classgate.policies.filelock import exclusive_lock

FOLDER: Final = "audit"
FILE: Final = "teacher-actions.log"
MAX_BYTES: Final = 1 << 20  # 1 MiB a file: ~5,000 actions, a term of a busy school
KEEP: Final = 5  # rotated files kept beside the current one
FILE_MODE: Final = 0o640

# start/end: a class action; refused: one the policy or the account did not allow (who tried to loosen what);
# account-*: the admin's changes to teacher accounts.
AuditEvent = Literal["start", "end", "refused", "account-add", "account-remove", "account-reset"]


class AuditError(Exception):
    """The audit log cannot be written: the action is not done without its record."""


class AuditLog:
    def __init__(self, state_dir: Path, *, max_bytes: int = MAX_BYTES, keep: int = KEEP) -> None:
        self.folder = Path(state_dir) / FOLDER
        self.path = self.folder / FILE
        self.max_bytes, self.keep = max_bytes, keep

    def action(self, event: AuditEvent, by: str, action: ClassAction, tz: dt.tzinfo | None = None,
               at: float | None = None, reason: str | None = None) -> None:
        """One line about a class action (`at`: when it happened, default the action's start)."""
        self.write(event, by, at if at is not None else action.starts, tz, id=action.id, kind=action.kind,
                   group=action.group, sites=list(action.sites), reason=reason,
                   **{"from": _iso(action.starts, tz), "until": _iso(action.until, tz)})

    def write(self, event: AuditEvent, by: str, at: float, tz: dt.tzinfo | None = None, **fields: Any) -> None:
        line = {"at": _iso(at, tz), "event": event, "by": by,
                **{k: v for k, v in fields.items() if v is not None}}
        data = (json.dumps(line, ensure_ascii=False) + "\n").encode()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with exclusive_lock(self.folder / ".lock", FILE_MODE):
                if self.path.exists() and self.path.stat().st_size + len(data) > self.max_bytes:
                    self._rotate()
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
                try:
                    os.write(fd, data)
                    os.fsync(fd)
                finally:
                    os.close(fd)
        except OSError as exc:
            raise AuditError(f"{self.path}: cannot write the audit log: {exc.strerror or exc}") from None

    def read(self) -> list[dict[str, Any]]:
        """Every line kept, oldest first (for the console's history and the tests)."""
        lines: list[dict[str, Any]] = []
        for path in [*(self._rotated(i) for i in range(self.keep, 0, -1)), self.path]:
            try:
                lines.extend(json.loads(raw) for raw in path.read_text(encoding="utf-8").splitlines() if raw)
            except FileNotFoundError:
                continue
        return lines

    def files(self) -> Iterable[Path]:
        return [p for p in (self.path, *(self._rotated(i) for i in range(1, self.keep + 1))) if p.exists()]

    def _rotate(self) -> None:
        self._rotated(self.keep).unlink(missing_ok=True)
        for i in range(self.keep - 1, 0, -1):
            if self._rotated(i).exists():
                os.replace(self._rotated(i), self._rotated(i + 1))
        os.replace(self.path, self._rotated(1))

    def _rotated(self, i: int) -> Path:
        return self.folder / f"{FILE}.{i}"


def _iso(ts: float, tz: dt.tzinfo | None) -> str:
    return dt.datetime.fromtimestamp(ts, tz or dt.UTC).isoformat(timespec="seconds")
