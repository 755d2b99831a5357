"""`classgate department serve`: the repository as static files, plus the fleet view, for trying it out.

Production serves `DIR/repository` with nginx (deploy/department/); this server is the same static layout
with two extra endpoints:
    POST /report   a gateway's status (JSON, <= 16 KiB): version, health; no usage data, no addresses kept
    GET  /fleet    every gateway's last report and a count per bundle version (JSON)
Never serves anything outside DIR/repository (the keys live beside it).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from classgate.policies.atomicfile import atomic_write

log = logging.getLogger(__name__)

MAX_REPORT_BYTES = 16 * 1024
MAX_GATEWAYS = 50_000
REPORT_FIELDS = {"gateway": str, "state": str, "active_version": int, "active_policy": str,
                 "last_success": float, "metadata_expires": float, "error": str, "consecutive_failures": int}


class Fleet:
    """The last report of each gateway, kept in memory and in DIR/fleet.json."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self.gateways: dict[str, dict[str, Any]] = {}
        try:
            self.gateways = dict(json.loads(path.read_text()).get("gateways", {}))
        except (OSError, ValueError, AttributeError):
            pass

    def record(self, report: dict[str, Any]) -> None:
        clean = {k: _typed(report.get(k), t) for k, t in REPORT_FIELDS.items()}
        clean["groups"] = _groups(report.get("groups"))
        gateway = clean.pop("gateway")
        if not gateway or len(gateway) > 128:
            raise ValueError("report: gateway must be a non-empty name of at most 128 characters")
        clean["received"] = time.time()
        with self._lock:
            if gateway not in self.gateways and len(self.gateways) >= MAX_GATEWAYS:
                raise ValueError("fleet is full")
            self.gateways[gateway] = clean
            atomic_write(self.path, json.dumps({"gateways": self.gateways}, sort_keys=True).encode(), 0o640)

    def view(self) -> dict[str, Any]:
        with self._lock:
            versions: dict[str, int] = {}
            for info in self.gateways.values():
                key = str(info.get("active_version"))
                versions[key] = versions.get(key, 0) + 1
            return {"gateways": dict(self.gateways), "versions": versions, "count": len(self.gateways)}


MAX_GROUPS = 64  # a school has a handful; a report is not a place to store data


def _groups(value: Any) -> dict[str, dict[str, Any]]:
    """The group table of a report ({name: {"in", "ipv4", "ipv6_networks"}}), bounded; anything else dropped."""
    if not isinstance(value, dict):
        return {}
    out: dict[str, dict[str, Any]] = {}
    for name, row in list(value.items())[:MAX_GROUPS]:
        if isinstance(name, str) and 0 < len(name) <= 64 and isinstance(row, dict):
            out[name] = {"in": _typed(row.get("in"), str), "ipv4": _typed(row.get("ipv4"), int),
                         "ipv6_networks": _typed(row.get("ipv6_networks"), int)}
    return out


def _typed(value: Any, kind: type) -> Any:
    if value is None:
        return None
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is str and isinstance(value, str):
        return value[:200]
    return None


class RepositoryHandler(SimpleHTTPRequestHandler):
    fleet: Fleet
    counters: dict[str, int]
    # Every poll of every gateway asks for the next root version and gets a 404: keep that answer tiny.
    error_message_format = "%(code)d %(message)s\n"
    error_content_type = "text/plain"

    def __init__(self, *args: Any, fleet: Fleet, counters: dict[str, int], **kwargs: Any):
        self.fleet, self.counters = fleet, counters
        super().__init__(*args, **kwargs)

    def list_directory(self, path: Any) -> None:  # a repository is not browsable
        self.send_error(HTTPStatus.NOT_FOUND)

    def do_GET(self) -> None:
        self.counters["requests"] = self.counters.get("requests", 0) + 1
        if self.path.split("?", 1)[0] == "/fleet":
            self._json(HTTPStatus.OK, self.fleet.view())
            return
        super().do_GET()

    def do_POST(self) -> None:
        if self.path != "/report":
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        length = self.headers.get("Content-Length", "")
        if not length.isdigit() or int(length) > MAX_REPORT_BYTES:
            self.send_error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE if length.isdigit() else HTTPStatus.LENGTH_REQUIRED)
            return
        try:
            report = json.loads(self.rfile.read(int(length)))
            self.fleet.record(report if isinstance(report, dict) else {})  # not an object: no gateway name
        except ValueError as e:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(e)})
            return
        self._json(HTTPStatus.OK, {"ok": True})

    def _json(self, status: HTTPStatus, body: dict[str, Any]) -> None:
        data = json.dumps(body, sort_keys=True).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # no client addresses in default logs
        log.debug("department serve: " + format, *args)


def make_server(root_dir: Path, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """A server for DIR/repository (+ /fleet, /report); call serve_forever() on it."""
    repository = root_dir / "repository"
    if not (repository / "metadata").is_dir():
        raise FileNotFoundError(f"{repository}/metadata: not a Department repository (run `department init`)")
    handler = partial(RepositoryHandler, directory=str(repository), fleet=Fleet(root_dir / "fleet.json"),
                      counters={})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server
