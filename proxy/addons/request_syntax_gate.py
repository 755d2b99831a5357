"""Refuse malformed requests (400) before any component reads them: see proxy/request_syntax.py."""

from __future__ import annotations

import logging
import time

from mitmproxy import http

from classgate.proxy.context import FilterContext
from classgate.proxy.request_syntax import malformed_part
from classgate.proxy.responses import can_answer

log = logging.getLogger(__name__)

LOG_EVERY_SECONDS = 60.0  # one line a minute at most: a client sending garbage must not flood the log


class RequestSyntaxGate:
    def __init__(self, context: FilterContext) -> None:
        self.context = context
        self._last_log = 0.0
        self._unlogged = 0

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        r = flow.request.data
        part = malformed_part(
            r.method, r.path, r.authority,
            [v for k, v in r.headers.fields if k.lower() == b"host"],
            list(r.headers.fields),
        )
        if part is None:
            return
        self.context.verdicts.malformed_request(part)
        self._log(part)
        if not can_answer(flow.request):
            flow.kill()
            return
        flow.response = http.Response.make(
            400, b"Bad request: the school network filter refused a malformed request.\n",
            {"Content-Type": "text/plain; charset=utf-8", "Connection": "close"},
        )

    def _log(self, part: str) -> None:
        now = time.monotonic()
        if now - self._last_log < LOG_EVERY_SECONDS:
            self._unlogged += 1
            return
        # No address, no URL: which part was malformed is enough to tell a broken client from an attack.
        more = f" ({self._unlogged} more since the last line)" if self._unlogged else ""
        log.info("refused a malformed request: bad %s%s", part.replace("_", " "), more)
        self._last_log, self._unlogged = now, 0
