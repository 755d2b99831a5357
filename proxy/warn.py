"""The student's side of a decision the engine allowed or warned: warn-and-continue, daily quotas, ask codes.

The request filter hands every request it did not block to `StudentSide.judge`, which answers it (the warn
page, the answer to "continue", the block page of a used-up quota) or lets it through (None).

Warn-and-continue keeps its state in the browser, in a cookie on the warned site (proxy/warn_token.py):
- it survives a gateway restart and works on every worker (the key is in the state dir), with nothing kept
  per student on the gateway: no table to bound, to lose, or to read back;
- it is tied to the device twice over: the browser keeps it, and the client address is inside its MAC;
- it is the gateway's alone: HttpOnly (no page script reads it), removed from every request before it goes
  upstream, and Secure on HTTPS, SameSite=Lax, Domain = the registrable domain the warning was about.
"Continue" is a form POST to `CONTINUE_PATH` on the warned host, answered here and never forwarded; it needs
the warn page's form token (signed, bound to the site and the device) and, when the browser sends them, an
`Origin` of the warned site and `Sec-Fetch-Site: same-origin`, so no other page can continue for the student.
A GET there is just another warned request: it changes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from mitmproxy import http

from classgate.metrics.topsites import registrable_domain
from classgate.policies import Decision, Policy
from classgate.policies.model import Rule
from classgate.policies.vocabulary import Action
from classgate.proxy.ask_code import AskCodes, shared_ask_table, site_of
from classgate.proxy.blockpage import new_ref
from classgate.proxy.quota import SHARED_MEMORY, QuotaBook, QuotaBookError, shared_table_path
from classgate.proxy.responses import BlockResponder, can_answer
from classgate.proxy.warn_token import COOKIE_NAME, ContinueTokens, derive, load_or_create_key

log = logging.getLogger(__name__)

CONTINUE_PATH: Final = "/.classgate/continue"
_COOKIE_BYTES: Final = COOKIE_NAME.encode()


class StudentEvents(Protocol):
    """Where the student side's events are counted (classgate.metrics.Metrics is the real one)."""

    def record_warning_shown(self, category: str, group: str) -> None: ...

    def record_warning_continued(self, category: str, group: str) -> None: ...

    def record_quota_used_up(self, category: str, group: str) -> None: ...


class NoStudentEvents:
    def record_warning_shown(self, category: str, group: str) -> None:
        pass

    def record_warning_continued(self, category: str, group: str) -> None:
        pass

    def record_quota_used_up(self, category: str, group: str) -> None:
        pass


@dataclass(frozen=True)
class StudentAnswer:
    """The gateway answers the request itself: `action` is what the flow's verdict records."""

    action: Action  # "warn" (the warn page, or the answer to "continue") or "block" (a used-up quota)
    response: http.Response | None  # None: the request cannot be answered (a streamed upload): kill it
    ref: str


def strip_continue_cookie(request: http.Request) -> None:
    """Remove our cookie from a request before it goes upstream (the site never sees it)."""
    # Every request passes here: a scan of the raw values costs a third of a header lookup.
    if not any(_COOKIE_BYTES in value for _, value in request.headers.fields):
        return
    raw = request.headers.get_all("cookie")
    kept = [pair for line in raw for pair in line.split(";")
            if pair.strip() and pair.strip().partition("=")[0].strip() != COOKIE_NAME]
    if kept:
        request.headers["cookie"] = "; ".join(p.strip() for p in kept)
    else:
        del request.headers["cookie"]


def _continue_cookies(request: http.Request) -> list[str]:
    values = []
    for line in request.headers.get_all("cookie"):
        for pair in line.split(";"):
            name, _, value = pair.strip().partition("=")
            if name.strip() == COOKIE_NAME:
                values.append(value.strip())
    return values


def safe_return_path(raw: str) -> str:
    """The path "continue" goes back to: a path on the same host ("/..."), never another host ("//x", "\\x")."""
    if not raw.startswith("/") or raw.startswith("//") or "\\" in raw or any(c < " " for c in raw) or len(raw) > 2048:
        return "/"
    return raw


class StudentSide:
    """Warn tokens, quota counts and ask codes of one gateway (key from the state dir, or random for tests)."""

    def __init__(self, key: bytes, events: StudentEvents | None = None, *,
                 quotas: Callable[[], QuotaBook] = QuotaBook, asks: AskCodes | None = None) -> None:
        """`quotas` makes the quota table on first use: a gateway whose policy has no quota never maps one."""
        self.tokens = ContinueTokens(key)
        self._make_quotas = quotas
        self._quotas: QuotaBook | None = None
        # `is None`, not `or`: an empty table has len() 0 and is falsy.
        self.asks = asks if asks is not None else AskCodes(derive(key, b"ask-code"))
        self.events: StudentEvents = events or NoStudentEvents()

    def __repr__(self) -> str:
        return f"StudentSide({self._quotas!r}, {self.asks!r})"

    @property
    def quotas(self) -> QuotaBook:
        if self._quotas is None:
            self._quotas = self._make_quotas()
        return self._quotas

    @classmethod
    def in_memory(cls) -> StudentSide:
        """A key that lives as long as the process (a gateway without a state dir, tests)."""
        return cls(os.urandom(32))

    @classmethod
    def from_state_dir(cls, state_dir: Path, events: StudentEvents | None = None, *,
                       shm: Path = SHARED_MEMORY) -> StudentSide:
        """The gateway's: the key in `state_dir` (made on first start; raises StudentKeyError), and the quota
        table every worker of this gateway shares (in this process only where shared memory cannot be had)."""
        table = shared_table_path(state_dir, shm)

        def quotas() -> QuotaBook:
            if table is None:
                log.warning("no /dev/shm: quotas are counted per worker process")
                return QuotaBook()
            try:
                return QuotaBook(shared=table)
            except QuotaBookError as e:
                log.warning("%s; quotas are counted per worker process", e)
                return QuotaBook()

        key = load_or_create_key(state_dir)
        # The codes go to the table the console reads too (proxy/ask_code.py), as the same key makes them.
        asks = AskCodes(derive(key, b"ask-code"), shared=shared_ask_table(state_dir, shm=shm))
        return cls(key, events, quotas=quotas, asks=asks)

    def judge(self, flow: http.HTTPFlow, policy: Policy, decision: Decision,
              responder: BlockResponder) -> StudentAnswer | None:
        """Answer a request the engine did not block, or None to let it through (our cookie removed)."""
        warned = decision.action == "warn"
        cookies = _continue_cookies(flow.request) if warned else []
        strip_continue_cookie(flow.request)
        rule = policy.rule(decision.rule)
        if not warned and (rule is None or rule.quota is None):
            return None  # most requests: nothing of ours to do
        peer = flow.client_conn.peername
        client = peer[0] if peer else ""
        now = responder.clock.now(policy.timezone)
        if warned:
            answer = self._warned(flow, policy, decision, rule, client, now, responder, cookies)
            if answer is not None:
                return answer
        if rule is not None and self._used_up(rule, decision, client, now):
            ref = new_ref()
            log.info("quota used up ref=%s group=%s category=%s rule=%s", ref, decision.group, decision.category,
                     rule.name)
            return StudentAnswer("block", self._respond(flow, lambda: responder.respond(
                flow, policy, ref=ref, categories=decision.categories, rule=rule.name, host=decision.host,
                group=decision.group, tier=decision.tier, quota_used_up=True)), ref)
        return None

    def connection_used_up(self, policy: Policy, decision: Decision, client: str | None, now: dt.datetime) -> bool:
        """For a connection the gateway will not see inside (passed through): its start is a request in its
        minute. True when the rule's quota is used up, so the connection must not pass."""
        rule = policy.rule(decision.rule)
        return rule is not None and self._used_up(rule, decision, client or "", now)

    def _used_up(self, rule: Rule, decision: Decision, client: str, now: dt.datetime) -> bool:
        """Count this minute against the device's quota on `rule` (if it has one): True when it is used up."""
        if rule.quota is None:
            return False
        use = self.quotas.charge(client, rule.name, rule.quota.minutes, now)
        if use.newly_used_up:
            self.events.record_quota_used_up(decision.category, decision.group)
        return not use.allowed

    def _warned(self, flow: http.HTTPFlow, policy: Policy, decision: Decision, rule: Rule | None, client: str,
                now: dt.datetime, responder: BlockResponder, cookies: list[str]) -> StudentAnswer | None:
        """The warn page, the answer to "continue", or None when this device has continued already."""
        site = site_of(decision.host)
        request = flow.request
        path, _, query = request.path.partition("?")
        ts = now.timestamp()
        minutes = rule.warn.minutes if rule is not None and rule.warn is not None else 0
        ref = new_ref()
        if request.method == "POST" and path == CONTINUE_PATH:
            try:
                fields = urllib.parse.parse_qs(query, max_num_fields=4)
            except ValueError:  # more fields than the form has: not our form
                fields = {}
            token = (fields.get("t") or [""])[0]
            back = safe_return_path((fields.get("to") or ["/"])[0])
            if minutes and self._same_origin(request) and self.tokens.form_token_valid(token, site, client, ts):
                expires = int(ts) + minutes * 60
                cookie = self.tokens.cookie(site, client, expires)
                self.events.record_warning_continued(decision.category, decision.group)
                log.info("warning continued ref=%s group=%s category=%s rule=%s minutes=%d", ref, decision.group,
                         decision.category, decision.rule, minutes)
                return StudentAnswer("warn", self._respond(flow, lambda: responder.continued(
                    location=back, cookie=self._set_cookie(cookie, site, request.scheme, minutes))), ref)
            back_to = back
        else:
            back_to = request.path
            if any(self.tokens.cookie_valid(v, site, client, ts) for v in cookies):
                return None
        quota_left = None
        if rule is not None and rule.quota is not None:
            quota_left = self.quotas.peek(client, rule.name, rule.quota.minutes, now).left
        action = f"{CONTINUE_PATH}?" + urllib.parse.urlencode(
            {"t": self.tokens.form_token(site, client, ts), "to": safe_return_path(back_to)})
        self.events.record_warning_shown(decision.category, decision.group)
        log.info("warned ref=%s group=%s category=%s rule=%s", ref, decision.group, decision.category, decision.rule)
        # A warn rule always has minutes; a warn from anything else cannot be continued (no button works).
        return StudentAnswer("warn", self._respond(flow, lambda: responder.warn(
            flow, policy, ref=ref, categories=decision.categories, rule=decision.rule, form_action=action,
            minutes=minutes, quota_left=quota_left)), ref)

    @staticmethod
    def _same_origin(request: http.Request) -> bool:
        """The browser's own word, when it gives it, that the POST comes from a page of this same site."""
        fetch_site = request.headers.get("sec-fetch-site")
        if fetch_site is not None and fetch_site != "same-origin":
            return False
        origin = request.headers.get("origin")
        if origin is None:
            return True  # not a browser that sends it (curl); the form token is still required
        return bool(origin.lower() == f"{request.scheme}://{request.host_header or request.host}".lower())

    @staticmethod
    def _set_cookie(value: str, site: str, scheme: str, minutes: int) -> str:
        parts = [f"{COOKIE_NAME}={value}", "Path=/", f"Max-Age={minutes * 60}", "HttpOnly", "SameSite=Lax"]
        if registrable_domain(site) == site:  # a name; an address gets a host-only cookie (no Domain)
            parts.append(f"Domain={site}")
        if scheme == "https":
            parts.append("Secure")
        return "; ".join(parts)

    @staticmethod
    def _respond(flow: http.HTTPFlow, make: Callable[[], http.Response]) -> http.Response | None:
        """The answer, unless the request is an upload that cannot be answered (then the flow is killed)."""
        return make() if can_answer(flow.request) else None
