"""Helpers for the sync tests (a uniquely named module: `conftest` is ambiguous across test folders): a small
real policy, a real Department repository, a real HTTP server that misbehaves on command, and a gateway (the
real SyncAddon around a real PolicyHolder and real Metrics)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from click.testing import CliRunner

POLICY_V1 = """\
classgate: 1
name: test-department
timezone: Asia/Ho_Chi_Minh
sources:
  ut1: {format: ut1, path: lists/ut1}
categories:
  gambling: {include: [ut1/gambling]}
  social: {include: [ut1/social_networks]}
groups:
  students: {networks: [10.10.0.0/16]}
rules:
  - {name: harmful, action: block, categories: [gambling], locked: true}
  - {name: social, action: block, categories: [social]}
default: allow
local_services: [127.0.0.50]   # test origins stand for the Internet there (127.0.0.1 is the gateway's own)
"""
OVERLAY = """\
classgate: 1
overlay: true
name: test-school
categories:
  social: {domains: [school-added.example]}
"""
LISTS_V1 = {
    "lists/ut1/gambling/domains": "casino-one.example\n",
    "lists/ut1/social_networks/domains": "chat.example\n",
}
# v2: one list changes (a new casino) and the policy file changes (a comment).
LISTS_V2 = {**LISTS_V1, "lists/ut1/gambling/domains": "casino-one.example\ncasino-two.example\n"}
POLICY_V2 = POLICY_V1 + "# v2\n"


def write_policy(folder: Path, policy: str, lists: dict[str, str]) -> Path:
    """A policy folder: department.yaml + lists in UT1 layout; returns the policy path."""
    if folder.exists():
        shutil.rmtree(folder)
    for rel, text in lists.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    path = folder / "department.yaml"
    path.write_text(policy)
    return path


def cli(*args: str) -> str:
    """Run `classgate department|lists ...` through click, as an admin would; fails the test on exit != 0."""
    from classgate.agent.commands.department import department
    from classgate.agent.commands.lists import lists

    group = {"department": department, "lists": lists}[args[0]]
    result = CliRunner().invoke(group, list(args[1:]), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


# --- the misbehaving server ---------------------------------------------------------------------------

@dataclass
class Rule:
    pattern: re.Pattern[str]
    behavior: str
    data: bytes | None = None


@dataclass
class Served:
    path: str
    status: int
    nbytes: int


class RepoServer:
    """Serves a repository folder on 127.0.0.1:<ephemeral>; `on(pattern, behavior)` makes matching paths
    misbehave: tamper, truncate, drip, 500, garbage, html, endless, reset, bytes (serve `data`)."""

    def __init__(self, root: Path):
        self.root = root
        self.rules: list[Rule] = []
        self.log: list[Served] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.handle(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def on(self, pattern: str, behavior: str, data: bytes | None = None) -> None:
        self.rules.insert(0, Rule(re.compile(pattern), behavior, data))

    def clear(self) -> None:
        self.rules.clear()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def requests(self, pattern: str = "") -> list[Served]:
        with self.lock:
            return [s for s in self.log if re.search(pattern, s.path)]

    def _record(self, path: str, status: int, nbytes: int) -> None:
        with self.lock:
            self.log.append(Served(path, status, nbytes))

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.split("?", 1)[0]
        rule = next((r for r in self.rules if r.pattern.search(path)), None)
        behavior = rule.behavior if rule else "ok"
        if behavior == "reset":
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            return self._record(path, 0, 0)
        if behavior == "500":
            return self._send(h, path, 500, b"internal error")
        if behavior == "html":
            return self._send(h, path, 200, b"<!doctype html><html><body><h1>504 Gateway Time-out</h1></body></html>",
                              "text/html")
        if behavior == "garbage":
            return self._send(h, path, 200, os.urandom(300))
        if behavior == "endless":
            return self._endless(h, path)
        if behavior == "bytes":
            return self._send(h, path, 200, rule.data or b"")
        file = (self.root / path.lstrip("/")).resolve()
        if not file.is_relative_to(self.root.resolve()) or not file.is_file():
            return self._send(h, path, 404, b"not found")
        body = file.read_bytes()
        if behavior == "tamper":
            body = body[:-2] + bytes([body[-2] ^ 0x01]) + body[-1:]  # same length, one bit differs
        if behavior == "truncate":
            return self._truncated(h, path, body)
        if behavior == "drip":
            return self._drip(h, path, body)
        return self._send(h, path, 200, body)

    def _send(self, h: BaseHTTPRequestHandler, path: str, status: int, body: bytes,
              ctype: str = "application/octet-stream") -> None:
        # Recorded before the answer goes out: once the client has it, its next request (another handler
        # thread) could otherwise be recorded first, and the log's order is what tests compare.
        self._record(path, status, len(body))
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def _truncated(self, h: BaseHTTPRequestHandler, path: str, body: bytes) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body[: len(body) // 2])
        h.wfile.flush()
        h.close_connection = True
        h.connection.shutdown(socket.SHUT_RDWR)
        self._record(path, 200, len(body) // 2)

    def _drip(self, h: BaseHTTPRequestHandler, path: str, body: bytes) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        sent = 0
        try:
            for i in range(len(body)):  # bounded by the file; the client gives up long before
                h.wfile.write(body[i:i + 1])
                h.wfile.flush()
                sent += 1
                time.sleep(0.2)
        except OSError:
            pass
        self._record(path, 200, sent)

    def _endless(self, h: BaseHTTPRequestHandler, path: str) -> None:
        h.send_response(200)
        h.end_headers()  # no Content-Length: "the rest of the connection"
        sent = 0
        chunk = b"A" * 65536
        try:
            while sent < 256 * 1024 * 1024:  # bounded even if the client never stopped reading
                h.wfile.write(chunk)
                sent += len(chunk)
        except OSError:
            pass
        h.close_connection = True
        self._record(path, 200, sent)


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (the Department is down)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


# --- the Department: v1 and v2 published once per session, copied per test -----------------------------

@dataclass
class DepartmentTemplate:
    base: Path  # holds "v1/" (v1 published) and "v2/" (v1 then v2 published), plus "policy-v*" folders

    def copy(self, dest: Path, state: str = "v2") -> Path:
        shutil.copytree(self.base / state, dest, symlinks=True)
        return dest




# --- the gateway ----------------------------------------------------------------------------------------

@dataclass
class Gateway:
    """The real SyncAddon (real PolicyHolder, real Metrics) driven step by step on its own event loop."""

    state_dir: Path
    url: str
    trust: Path
    overlay: Path | None = None
    limits: Any = None
    report_to: str | None = None
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)

    def __post_init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        """A fresh process: new holder, metrics and addon over the same state dir (a reboot)."""
        from classgate.agent.sync.gateway_addon import SyncAddon
        from classgate.agent.sync.transport import Limits
        from classgate.proxy.metric_labels import gateway_metrics
        from classgate.proxy.policy_holder import PolicyHolder

        self.metrics = gateway_metrics()
        self.holder = PolicyHolder(cache_dir=self.state_dir / "compiled", metrics=self.metrics, source="sync")
        self.addon = SyncAddon(self.url, self.trust, self.state_dir, self.holder, self.metrics, self.overlay,
                               limits=self.limits or Limits(connect_timeout=2, read_timeout=2, deadline=5),
                               report_to=self.report_to)
        self.service = self.addon.service

    def start(self) -> Any:
        return self.loop.run_until_complete(self.service.start())

    def sync(self) -> bool:
        return self.loop.run_until_complete(self.service.sync_once())

    @property
    def status(self) -> dict[str, Any]:
        from classgate.agent.sync.status import read_status

        return read_status(self.state_dir)

    def decide(self, url: str) -> str:
        assert self.holder.policy is not None, "no policy active"
        return self.holder.policy.decide(url, client="10.0.0.1").action

    def exposition(self) -> str:
        from prometheus_client import generate_latest

        return generate_latest(self.metrics.registry).decode()

    def close(self) -> None:
        self.loop.close()


