"""Conditional GETs for list subscriptions: an unchanged list costs one small request.

The sync agent's `CappedFetcher` (agent/sync/transport.py) bounds every download: connect and read timeouts,
a deadline for the whole body, a byte cap, no redirects. This adds what a list upstream needs on top:
`If-None-Match` / `If-Modified-Since` from the validators of the last fetch, `304 Not Modified`, the
validators of the new copy, and a 404 that may be expected (a UT1 list with no `urls` file). The body is
read by the capped fetcher's own chunk reader, so the same deadline and caps apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO, Literal

import urllib3
from tuf.api import exceptions

from classgate.agent.sync.transport import CappedFetcher, OversizedError

Answer = Literal["modified", "not_modified", "missing"]


@dataclass(frozen=True)
class Validators:
    """What the server said identifies the copy we have (RFC 9110 section 8.8)."""

    etag: str | None = None
    last_modified: str | None = None

    def headers(self) -> dict[str, str]:
        headers = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers


@dataclass(frozen=True)
class Response:
    answer: Answer
    validators: Validators = Validators()
    nbytes: int = 0


class ConditionalFetcher(CappedFetcher):
    """A CappedFetcher that can ask "only if changed" and write the body to a file."""

    def get_if_changed(self, url: str, validators: Validators, out: BinaryIO, max_bytes: int,
                       missing_ok: bool = False) -> Response:
        """GET `url` into `out` unless the server says our copy is current (304).

        Raises the transport's errors (tuf.api.exceptions.DownloadError and its kinds: HTTP status, timeout,
        deadline, size cap, truncation); a 404 is `missing` instead when `missing_ok`."""
        limits = self.limits
        self._count(requests=1)
        try:
            response = self._pool.request(
                "GET", url, headers={**self._pool.headers, **validators.headers()}, preload_content=False,
                redirect=False, retries=False,
                timeout=urllib3.Timeout(connect=limits.connect_timeout, read=limits.read_timeout),
            )
        except urllib3.exceptions.NewConnectionError as e:
            raise exceptions.DownloadError(f"{url}: cannot connect: {e.__context__ or e}") from e
        except urllib3.exceptions.TimeoutError as e:
            raise exceptions.SlowRetrievalError(f"{url}: timed out connecting") from e
        if response.status == 304:
            response.release_conn()
            return Response("not_modified", validators)
        if response.status == 404 and missing_ok:
            response.release_conn()
            return Response("missing")
        if response.status != 200:
            response.release_conn()
            hint = " (redirects are not followed: put the final address in `url`)" \
                if 300 <= response.status < 400 else ""
            raise exceptions.DownloadHTTPError(f"{url}: HTTP {response.status}{hint}", response.status)
        announced = response.headers.get("Content-Length")
        if announced is not None and announced.isdigit() and int(announced) > max_bytes:
            response.release_conn()
            raise OversizedError(f"{url}: announces {announced} bytes, the cap is {max_bytes}")
        fresh = Validators(response.headers.get("ETag"), response.headers.get("Last-Modified"))
        received = 0
        for chunk in self._chunks(url, response):
            received += len(chunk)
            if received > max_bytes:
                response.close()
                raise OversizedError(f"{url}: more than {max_bytes} bytes, the size cap")
            out.write(chunk)
        return Response("modified", fresh, received)
