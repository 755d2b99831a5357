"""mitmproxy responses for a blocked request: the block page and the "filter error" page."""

from __future__ import annotations

from mitmproxy import http

from classgate.policies import Policy
from classgate.policies.model import Rule
from classgate.policies.schedules import active_until
from classgate.policies.vocabulary import BlockPageLanguage, PageLanguage
from classgate.proxy import blockpage
from classgate.proxy.clock import Clock

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

    def __init__(self, clock: Clock, page: blockpage.BlockPage | None = None) -> None:
        self.clock = clock
        self.page = page or blockpage.BlockPage()

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
    ) -> http.Response:
        """A 403 with the block page (or the filter error page when `error`)."""
        settings = policy.block_page if policy is not None else None
        language = page_language(settings.language if settings is not None else "vi",
                                 flow.request.headers.get("accept-language"))
        at = self.clock.now(policy.timezone) if policy is not None else None
        reason, until = "", None
        blocking = _rule(policy, rule) if policy is not None and not error else None
        if policy is not None and blocking is not None and at is not None:
            if blocking.reason is not None:
                reason = getattr(blocking.reason, language) or blocking.reason.vi or blocking.reason.en
            if blocking.when:
                until = active_until((policy.document.schedules[n] for n in blocking.when
                                      if n in policy.document.schedules), at)
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
        )
        headers = dict(_HEADERS)
        headers["X-Classgate-Ref"] = ref
        return http.Response.make(403, self.page.render(info, language), headers)


def page_language(policy_language: BlockPageLanguage, accept_language: str | None) -> PageLanguage:
    """The policy's language; with `language: auto`, the browser's (Accept-Language), Vietnamese otherwise.

    A Vietnamese school's page stays Vietnamese for a browser set to English, unless the school says auto."""
    if policy_language == "auto":
        return "en" if blockpage.choose_language(accept_language, "vi") == "en" else "vi"
    return policy_language


def _rule(policy: Policy, name: str | None) -> Rule | None:
    if name is None:
        return None
    return next((r for r in policy.document.rules if r.name == name), None)


def shown_url(request: http.Request) -> str:
    """The address the page shows (scheme, Host header or target, path) as printable text.

    mitmproxy keeps bytes that are not UTF-8 as surrogate escapes, which cannot be encoded into the page
    (and `pretty_url` re-encodes the host with IDNA, which fails on them): they are shown as U+FFFD."""
    text = f"{request.scheme}://{request.host_header or request.host}{request.path}"
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
