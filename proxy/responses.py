"""mitmproxy responses for a blocked request: the block page and the "filter error" page."""

from __future__ import annotations

from typing import Any

from mitmproxy import http

from proxy import blockpage, clock

_HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    # A block must not be cached: the same URL may be allowed after class, or after a policy change.
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    # The page has no script and loads nothing: tell the browser so, in case a reflected value slips.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "Referrer-Policy": "no-referrer",
}


def block_response(
    flow: http.HTTPFlow,
    policy: Any | None,
    *,
    ref: str,
    categories: tuple[str, ...] = (),
    rule: str | None = None,
    error: bool = False,
) -> http.Response:
    """A 403 with the block page (or the filter error page when `error`) in the client's language."""
    settings = getattr(policy, "block_page", None)
    default_language = getattr(settings, "language", "vi") or "vi"
    language = blockpage.choose_language(flow.request.headers.get("accept-language"), default_language)
    tz = getattr(policy, "timezone", None)
    try:
        at = clock.now(tz) if tz is not None else None
    except clock.ClockError:
        at = None
    info = blockpage.BlockInfo(
        url=flow.request.pretty_url,
        categories=categories,
        rule=rule,
        contact=getattr(settings, "contact", "") or "",
        at=at,
        ref=ref,
        error=error,
    )
    headers = dict(_HEADERS)
    headers["X-Classgate-Ref"] = ref
    return http.Response.make(403, blockpage.render(info, language), headers)
