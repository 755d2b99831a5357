"""A real list upstream on 127.0.0.1 for the `classgate lists fetch` tests (a uniquely named module).

It serves a folder (the tests give it ../shared/data, or a copy) with the validators a real upstream sends:
a strong ETag (the SHA-256 of the body) and Last-Modified, and it answers `304 Not Modified` to a matching
If-None-Match / If-Modified-Since. `/ut1-archives/<list>.tar.gz` is a UT1 archive made on the fly from the
folder's `ut1/<list>/` (as dsi.ut-capitole.fr serves them). Each path can be made to misbehave:

    serve(path, data)     answer with these bytes instead of the file (the upstream changed)
    on(path, behaviour)   "500", "redirect", "drip" (a byte per 0.2 s), "stall" (headers, then silence),
                          "truncate" (half the announced body), "no-etag", "no-validators"
"""

from __future__ import annotations

import email.utils
import gzip
import hashlib
import io
import re
import tarfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

LAST_MODIFIED = email.utils.formatdate(1_780_000_000, usegmt=True)  # one fixed date for every file


@dataclass(frozen=True)
class Seen:
    path: str
    status: int
    if_none_match: str | None
    if_modified_since: str | None


class ListUpstream:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.bodies: dict[str, bytes] = {}
        self.behaviours: dict[str, str] = {}
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                upstream._handle(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def serve(self, path: str, data: bytes) -> None:
        self.bodies[path] = data

    def on(self, path: str, behaviour: str) -> None:
        self.behaviours[path] = behaviour

    def requests(self, path: str = "") -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.path.startswith(path)]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # --- answering ----------------------------------------------------------------------------------
    def _body(self, path: str) -> bytes | None:
        if path in self.bodies:
            return self.bodies[path]
        archive = re.fullmatch(r"/ut1-archives/([a-z0-9_-]+)\.tar\.gz", path)
        if archive:
            return ut1_archive(self.root / "ut1", archive.group(1))
        parts = [p for p in path.split("/") if p]
        if any(p in (".", "..") for p in parts):
            return None
        file = self.root.joinpath(*parts)
        return file.read_bytes() if file.is_file() else None

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.split("?", 1)[0]
        behaviour = self.behaviours.get(path, "ok")
        inm, ims = h.headers.get("If-None-Match"), h.headers.get("If-Modified-Since")
        body = self._body(path)
        status = 200
        if behaviour == "500":
            status, body = 500, b"internal error"
        elif behaviour == "redirect":
            status, body = 302, b""
        elif body is None:
            status, body = 404, b"not found"
        etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
        send_etag = behaviour not in ("no-etag", "no-validators")
        send_lm = behaviour != "no-validators"
        conditional = behaviour in ("ok", "no-etag", "no-validators")  # misbehaving paths always send a body
        if status == 200 and conditional and ((send_etag and inm == etag) or (not send_etag and send_lm and ims == LAST_MODIFIED)):
            status, body = 304, b""
        with self._lock:
            self.seen.append(Seen(path, status, inm, ims))
        h.send_response(status)
        if status in (200, 304):
            if send_etag:
                h.send_header("ETag", etag)
            if send_lm:
                h.send_header("Last-Modified", LAST_MODIFIED)
        if status == 302:
            h.send_header("Location", self.url + "/elsewhere")
        if status == 304:
            h.end_headers()
            return
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if behaviour == "truncate":
            h.wfile.write(body[: len(body) // 2])
            h.close_connection = True
        elif behaviour == "drip":
            for i in range(min(len(body), 200)):  # bounded; the client's deadline ends it long before
                try:
                    h.wfile.write(body[i:i + 1])
                    h.wfile.flush()
                except OSError:
                    break
                time.sleep(0.2)
            h.close_connection = True
        elif behaviour == "stall":
            time.sleep(3)  # longer than the test's read timeout
            h.close_connection = True
        else:
            h.wfile.write(body)


def ut1_archive(ut1: Path, name: str, extra: list[tuple[str, bytes]] | None = None) -> bytes | None:
    """`<name>.tar.gz` as UT1 publishes it: `<name>/domains`, `<name>/urls`, ... (fixed mtimes: one ETag)."""
    folder = ut1 / name
    if not folder.is_dir():
        return None
    members = [(f"{name}/{f.name}", f.read_bytes()) for f in sorted(folder.iterdir()) if f.is_file()]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for member, data in members + (extra or []):
            info = tarfile.TarInfo(member)
            info.size, info.mtime = len(data), 1_780_000_000
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buffer.getvalue(), compresslevel=1, mtime=0)  # gzip's own mtime fixed too
