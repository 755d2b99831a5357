"""mitmproxy responses of the gateway's own pages: the block page, the "filter error" page, the warn page and
the answer to its "continue"."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from mitmproxy import http

from classgate.policies import Policy
from classgate.policies.class_actions import ClassAction
from classgate.policies.model import Rule
from classgate.policies.schedules import active_until
from classgate.policies.vocabulary import BlockPageLanguage, PageLanguage, Tier
from classgate.proxy import blockpage
from classgate.proxy.ask_code import AskCodes, shown, site_of
from classgate.proxy.clock import Clock
from classgate.proxy.warn_page import WarnInfo, render_warn

_HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    # A block must not be cached: the same URL may be allowed after class, or after a policy change.
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    # The page has no script and loads nothing: tell the browser so, in case a reflected value slips.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "Referrer-Policy": "no-referrer",
}


# Bodies up to this size are read and then answered (a blocked form still gets its page); a chunked body,
# whose size nobody knows, or a larger one is cut instead: mitmproxy reads a body before it sends an answer,
# and a body that grows past `stream_large_bodies` while an answer waits makes it fail the connection.
ANSWERED_BODY_LIMIT = 1 << 20


def can_answer(request: http.Request) -> bool:
    """True when a refused request can get an answer; False: kill the flow (never let it through)."""
    if request.stream or "chunked" in request.headers.get("transfer-encoding", "").lower():
        return False
    try:
        return int(request.headers.get("content-length", "0") or 0) <= ANSWERED_BODY_LIMIT
    except ValueError:
        return False


class BlockResponder:
    """Makes the 403 answers of blocked requests, in the client's language, with the time on `clock`."""

    def __init__(self, clock: Clock, page: blockpage.BlockPage | None = None, asks: AskCodes | None = None,
                 teacher_action: Callable[[str | None], ClassAction | None] | None = None) -> None:
        """`asks`: where the block page's "ask your teacher" codes are kept; None: no code is offered.
        `teacher_action`: the class action a rule name of tier "teacher" stands for (its kind and end)."""
        self.clock = clock
        self.page = page or blockpage.BlockPage()
        self.asks = asks
        self.teacher_action = teacher_action

    def respond(
        self,
        flow: http.HTTPFlow,
        policy: Policy | None,
        *,
        ref: str,
        categories: tuple[str, ...] = (),
        rule: str | None = None,
        error: bool = False,
        gateway: bool = False,
        host: str | None = None,
        group: str | None = None,
        tier: Tier | None = None,
        quota_used_up: bool = False,
    ) -> http.Response:
        """A 403 with the block page (or the filter error page when `error`); with `host` and `group`, the page
        offers an "ask your teacher" code for that site, unless a locked rule blocked it (no teacher can lift
        that one)."""
        settings = policy.block_page if policy is not None else None
        language = page_language(settings.language if settings is not None else "vi",
                                 flow.request.headers.get("accept-language"))
        at = self.clock.now(policy.timezone) if policy is not None else None
        reason, until = "", None
        blocking = policy.rule(rule) if policy is not None and not error else None
        if policy is not None and blocking is not None and at is not None:
            reason = _reason(blocking, language)
            if blocking.when and not quota_used_up:
                until = active_until((policy.document.schedules[n] for n in blocking.when
                                      if n in policy.document.schedules), at)
        elif tier == "teacher" and policy is not None and self.teacher_action is not None:
            # A teacher's action, not a rule: the page says what the teacher did, and until when.
            action = self.teacher_action(rule)
            if action is not None:
                reason = blockpage.teacher_reason(action.kind, language)
                until = dt.datetime.fromtimestamp(action.until, policy.timezone)
        info = blockpage.BlockInfo(
            url=shown_url(flow.request),
            categories=categories,
            rule=rule,
            contact=settings.contact if settings is not None else "",
            at=at,
            ref=ref,
            error=error,
            reason=reason,
            until=until,
            gateway=gateway,
            quota_used_up=quota_used_up,
            ask_code=self._ask_code(host, group, rule) if not error and not gateway and tier != "locked" else "",
        )
        headers = dict(_HEADERS)
        headers["X-Classgate-Ref"] = ref
        return http.Response.make(403, self.page.render(info, language), headers)

    def warn(self, flow: http.HTTPFlow, policy: Policy, *, ref: str, categories: tuple[str, ...], rule: str | None,
             form_action: str, minutes: int, quota_left: int | None) -> http.Response:
        """A 403 with the warn page: "continue" posts to `form_action` on the same host."""
        language = page_language(policy.block_page.language, flow.request.headers.get("accept-language"))
        warning = policy.rule(rule)
        info = WarnInfo(
            url=shown_url(flow.request), form_action=form_action, minutes=minutes, categories=categories,
            rule=rule, reason=_reason(warning, language) if warning is not None else "",
            contact=policy.block_page.contact, at=self.clock.now(policy.timezone), ref=ref, quota_left=quota_left,
        )
        headers = dict(_HEADERS)
        headers["X-Classgate-Ref"] = ref
        # The form posts to this same page's site; "same-origin" lets the browser send that POST's Origin
        # (with "no-referrer" it would send "Origin: null"), which proxy/warn.py checks.
        headers["Referrer-Policy"] = "same-origin"
        headers["Content-Security-Policy"] += "; form-action 'self'"
        return http.Response.make(403, render_warn(self.page, info, language), headers)

    @staticmethod
    def continued(*, location: str, cookie: str) -> http.Response:
        """The answer to "continue": the cookie, and back to the warned page (303: the next request is a GET)."""
        return http.Response.make(303, b"", {"Location": location, "Set-Cookie": cookie, "Cache-Control": "no-store",
                                             "Referrer-Policy": "no-referrer"})

    def _ask_code(self, host: str | None, group: str | None, rule: str | None) -> str:
        if self.asks is None or not host or group is None:
            return ""
        return shown(self.asks.encode(site_of(host), group, rule))


def page_language(policy_language: BlockPageLanguage, accept_language: str | None) -> PageLanguage:
    """The policy's language; with `language: auto`, the browser's (Accept-Language), Vietnamese otherwise.

    A Vietnamese school's page stays Vietnamese for a browser set to English, unless the school says auto."""
    if policy_language == "auto":
        return "en" if blockpage.choose_language(accept_language, "vi") == "en" else "vi"
    return policy_language


def _reason(rule: Rule, language: PageLanguage) -> str:
    """The rule's own words for the page, in `language` if written in it."""
    if rule.reason is None:
        return ""
    return getattr(rule.reason, language) or rule.reason.vi or rule.reason.en


def shown_url(request: http.Request) -> str:
    """The address the page shows (scheme, Host header or target, path) as printable text.

    mitmproxy keeps bytes that are not UTF-8 as surrogate escapes, which cannot be encoded into the page
    (and `pretty_url` re-encodes the host with IDNA, which fails on them): they are shown as U+FFFD."""
    text = f"{request.scheme}://{request.host_header or request.host}{request.path}"
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
