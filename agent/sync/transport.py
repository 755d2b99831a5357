"""HTTP for the sync agent: python-tuf's FetcherInterface over urllib3, with every download bounded.

ngclient already passes a maximum length for each file (metadata caps from UpdaterConfig, target lengths
from signed metadata). This fetcher adds what ngclient cannot know:
  - a connect timeout and a read (gap) timeout,
  - a deadline for the whole download, so a server that drips one byte per second cannot hold a gateway,
  - a hard byte cap for any single response, checked against Content-Length before reading,
  - no redirects (a repository is static files at one base URL; a redirect is a misconfiguration),
and counts requests and bytes for metrics and the benchmark.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import urllib3
from tuf.api import exceptions
from tuf.ngclient.fetcher import FetcherInterface

from classgate.agent import __version__


@dataclass(frozen=True)
class Limits:
    connect_timeout: float = 10.0
    read_timeout: float = 20.0  # longest silence between two chunks
    deadline: float = 300.0  # longest whole download (a 30 MB list over a slow school uplink fits)
    max_bytes: int = 256 * 1024 * 1024  # no single file of a bundle is bigger
    chunk_size: int = 64 * 1024


class OversizedError(exceptions.DownloadLengthMismatchError):
    """The server announced or sent more bytes than allowed."""


class DeadlineError(exceptions.SlowRetrievalError):
    """The download took longer than its deadline."""


class TruncatedError(exceptions.DownloadError):
    """The connection closed before the announced length arrived."""


class CappedFetcher(FetcherInterface):
    """A FetcherInterface with timeouts, a deadline, a size cap and counters."""

    def __init__(self, limits: Limits | None = None, pool: urllib3.PoolManager | None = None):
        self.limits = limits or Limits()
        self._pool = pool or urllib3.PoolManager(
            num_pools=4, maxsize=2, headers={"User-Agent": f"classgate/{__version__}"}
        )
        self._lock = threading.Lock()
        self.requests = 0
        self.bytes = 0

    def _count(self, requests: int = 0, nbytes: int = 0) -> None:
        with self._lock:
            self.requests += requests
            self.bytes += nbytes

    def _fetch(self, url: str) -> Iterator[bytes]:
        limits = self.limits
        self._count(requests=1)
        try:
            response = self._pool.request(
                "GET", url, preload_content=False, redirect=False, retries=False,
                timeout=urllib3.Timeout(connect=limits.connect_timeout, read=limits.read_timeout),
            )
        except urllib3.exceptions.NewConnectionError as e:  # (a ConnectTimeoutError subclass in urllib3 2)
            raise exceptions.DownloadError(f"{url}: cannot connect: {e.__context__ or e}") from e
        except urllib3.exceptions.TimeoutError as e:
            raise exceptions.SlowRetrievalError(f"{url}: timed out connecting") from e
        if response.status >= 300:
            response.release_conn()
            raise exceptions.DownloadHTTPError(f"{url}: HTTP {response.status}", response.status)
        announced = response.headers.get("Content-Length")
        if announced is not None and announced.isdigit() and int(announced) > limits.max_bytes:
            response.release_conn()
            raise OversizedError(f"{url}: announces {announced} bytes, the cap is {limits.max_bytes}")
        return self._chunks(url, response)

    def _chunks(self, url: str, response: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
        limits = self.limits
        started = time.monotonic()
        received = 0
        complete = False
        try:
            # read1: whatever has arrived (up to chunk_size), so the deadline is checked while a slow
            # server drips; read()/stream() would block until a whole chunk is in.
            while chunk := response.read1(limits.chunk_size):
                received += len(chunk)
                self._count(nbytes=len(chunk))
                if received > limits.max_bytes:
                    raise OversizedError(f"{url}: more than {limits.max_bytes} bytes, the size cap")
                if time.monotonic() - started > limits.deadline:
                    raise DeadlineError(f"{url}: slower than the {limits.deadline:g} s deadline")
                yield chunk
            complete = True
        except urllib3.exceptions.TimeoutError as e:
            raise exceptions.SlowRetrievalError(f"{url}: no data for {limits.read_timeout:g} s") from e
        except urllib3.exceptions.ProtocolError as e:
            if isinstance(e.__context__, urllib3.exceptions.IncompleteRead) or "IncompleteRead" in str(e):
                raise TruncatedError(f"{url}: connection closed after {received} bytes") from e
            raise exceptions.DownloadError(f"{url}: {e}") from e
        finally:
            if complete:
                response.release_conn()
            else:  # unread bytes would be taken for the next response on a reused connection
                response.close()

    def get(self, url: str, max_bytes: int) -> bytes:
        """A bounded GET outside TUF (UT1 archives, which the Department checks by other means)."""
        return self.download_bytes(url, max_bytes)


def post_json(url: str, body: bytes, limits: Limits | None = None) -> int:
    """POST a small JSON document (the upward status report); returns the HTTP status."""
    limits = limits or Limits()
    response = urllib3.request(
        "POST", url, body=body, headers={"Content-Type": "application/json"}, redirect=False, retries=False,
        timeout=urllib3.Timeout(connect=limits.connect_timeout, read=limits.read_timeout),
    )
    return response.status
