"""Server-side sessions: the browser holds only a random id; who is signed in, the CSRF token and the
language live here, in memory, bounded, and end when idle or old.

Every visitor gets a session at the first page (the sign-in form needs a CSRF token too, against login
CSRF); signing in replaces it by a fresh id (no session fixation). Anonymous sessions and signed-in ones are
kept apart, each bounded, so a student opening the sign-in page in a loop evicts only other anonymous ones,
never a teacher's. A restart of the console signs everyone out, which is the safe direction.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final

from classgate.agent.console.settings import IDLE_SECONDS, LIFETIME_SECONDS

MAX_ANONYMOUS: Final = 2000
MAX_SIGNED_IN: Final = 500  # teachers of a large school, a few devices each
ANONYMOUS_SECONDS: Final = 3600.0  # a sign-in form left open this long must be loaded again


@dataclass(frozen=True)
class Session:
    id: str
    csrf: str
    created: float
    seen: float
    account: str | None = None  # the teacher's account name; None: not signed in
    lang: str = "vi"

    def __repr__(self) -> str:  # never an id or a token in a log line
        return f"Session(account={self.account!r}, lang={self.lang!r})"


class Sessions:
    def __init__(self, *, idle_seconds: float = IDLE_SECONDS, lifetime_seconds: float = LIFETIME_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        self.idle_seconds = idle_seconds
        self.lifetime_seconds = lifetime_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._anonymous: OrderedDict[str, Session] = OrderedDict()
        self._signed_in: OrderedDict[str, Session] = OrderedDict()

    def get(self, session_id: str | None) -> Session | None:
        """The live session of `session_id` (its idle time restarted), or None (unknown, idle or too old)."""
        if not session_id:
            return None
        now = self._clock()
        with self._lock:
            for table in (self._signed_in, self._anonymous):
                session = table.get(session_id)
                if session is None:
                    continue
                if not self._alive(session, now):
                    del table[session_id]
                    return None
                table[session_id] = session = replace(session, seen=now)
                table.move_to_end(session_id)
                return session
        return None

    def new(self, lang: str = "vi") -> Session:
        """A fresh anonymous session (the sign-in form's)."""
        session = self._make(None, lang)
        with self._lock:
            self._put(self._anonymous, session, MAX_ANONYMOUS)
        return session

    def sign_in(self, old: Session, account: str) -> Session:
        """A new session for `account` in place of `old` (a new id and a new CSRF token)."""
        session = self._make(account, old.lang)
        with self._lock:
            self._anonymous.pop(old.id, None)
            self._signed_in.pop(old.id, None)
            self._put(self._signed_in, session, MAX_SIGNED_IN)
        return session

    def set_lang(self, session: Session, lang: str) -> Session:
        with self._lock:
            table = self._signed_in if session.account else self._anonymous
            if session.id not in table:
                return session
            table[session.id] = changed = replace(session, lang=lang)
        return changed

    def end(self, session: Session) -> None:
        with self._lock:
            self._anonymous.pop(session.id, None)
            self._signed_in.pop(session.id, None)

    def end_account(self, account: str) -> None:
        """Sign `account` out everywhere (its password changed)."""
        with self._lock:
            for sid in [s.id for s in self._signed_in.values() if s.account == account]:
                del self._signed_in[sid]

    def __len__(self) -> int:
        return len(self._anonymous) + len(self._signed_in)

    def _make(self, account: str | None, lang: str) -> Session:
        now = self._clock()
        return Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), now, now, account, lang)

    def _alive(self, session: Session, now: float) -> bool:
        if session.account is None:
            return now - session.created < ANONYMOUS_SECONDS
        return now - session.seen < self.idle_seconds and now - session.created < self.lifetime_seconds

    @staticmethod
    def _put(table: OrderedDict[str, Session], session: Session, capacity: int) -> None:
        table[session.id] = session
        while len(table) > capacity:
            table.popitem(last=False)


def csrf_ok(session: Session | None, token: str | None) -> bool:
    """The form's token is its session's (constant-time)."""
    return session is not None and bool(token) and hmac.compare_digest(session.csrf, token or "")
