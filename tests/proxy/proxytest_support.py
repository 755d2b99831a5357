"""Shared pieces of the proxy tests: a test policy, a real origin, a real `classgate run` process, curl.

A module of its own (not conftest.py) so that tests import it by a name no other folder shares.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

from tests.proxy.proxytest_certs import make_origin_pki
from tests.proxy.proxytest_origin import Origin, start_origin

REPO = HERE.parents[1]
VENV_BIN = Path(sys.executable).parent
CLASSGATE = VENV_BIN / "classgate"
ARTIFACTS = REPO / "test-artifacts"

# Names the origin certificate covers: test destinations and the search engines SafeSearch rewrites.
ORIGIN_NAMES = [
    "allowed.test", "www.allowed.test", "blocked.test", "video.test", "social.test", "bank.test",
    "front.test", "www.google.com", "www.google.com.vn", "www.bing.com", "duckduckgo.com", "www.youtube.com",
]

TEACHER, STUDENT, GUEST, UNKNOWN = "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.1"

TEST_POLICY = """\
classgate: 1
name: proxy-e2e
timezone: Asia/Ho_Chi_Minh
categories:
  gambling: {domains: [blocked.test]}
  banking:  {domains: [bank.test]}
  social:   {domains: [social.test]}
groups:
  teachers: {networks: [127.0.0.2/32]}
  students: {networks: [127.0.0.3/32]}
  guests:   {networks: [127.0.0.4/32]}     # devices without the school CA
schedules:
  class_hours:
    - {days: mon-fri, from: "07:00", to: "11:30"}
rules:
  - {name: harmful, action: block, categories: [gambling]}
  - {name: no-shorts, action: block, urls: [video.test/shorts]}
  - {name: focus-in-class, action: block, groups: [students], when: class_hours, categories: [social]}
default: allow
safe_search: {google: strict, bing: strict, duckduckgo: strict, youtube: strict}
tls:
  inspect_groups: [teachers, students]
  never_decrypt: [banking]
block_page: {contact: "Phòng CNTT - cntt@school.test", language: vi}
local_services: [127.0.0.50]   # the test origin (tests/proxy/proxytest_origin.py) stands for the Internet
"""


def read_head(sock: socket.socket, limit: int = 65536) -> bytes:
    """What the peer sends up to the end of an HTTP head (or until it closes, or `limit` bytes): bounded."""
    head = b""
    while b"\r\n\r\n" not in head and len(head) < limit:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    return head


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


@dataclass
class Pki:
    directory: Path
    ca: Path
    cert: Path
    key: Path


@pytest.fixture(scope="session")
def origin_pki(tmp_path_factory) -> Pki:
    d = tmp_path_factory.mktemp("origin-pki")
    ca, cert, key = make_origin_pki(d, ORIGIN_NAMES)
    return Pki(d, ca, cert, key)


@pytest.fixture(scope="session")
def origin(origin_pki) -> Origin:
    o = start_origin(origin_pki.cert, origin_pki.key)
    yield o
    o.close()


@pytest.fixture
def policy_file(tmp_path) -> Path:
    p = tmp_path / "policy.yaml"
    p.write_text(TEST_POLICY, encoding="utf-8")
    return p


class ProxyProcess:
    """`classgate run` as a subprocess on an ephemeral port, upstream redirected to the test origin."""

    def __init__(self, policy: Path, state_dir: Path, origin: Origin | None, origin_ca: Path,
                 now: str | None = "2026-11-23 09:00", extra: list[str] | None = None,
                 log_path: Path | None = None, script: Path | None = None,
                 env_extra: dict[str, str] | None = None, redirect: bool = True,
                 tracebacks_expected: bool = False) -> None:
        """`script` replaces the test redirect (proxytest_redirect.py); `redirect=False` loads no script, so
        upstream connections go where the system resolver says, as on a gateway. `stop()` fails the test
        when the gateway logged a traceback, unless the test breaks the gateway on purpose
        (`tracebacks_expected`): a component failing quietly on every connection shows up nowhere else."""
        self.tracebacks_expected = tracebacks_expected
        self.port = free_port()
        self.metrics_port = free_port()
        self.state_dir = state_dir
        self.log_path = log_path or state_dir.parent / f"proxy-{self.port}.log"
        env = dict(os.environ)
        if origin is not None:
            env.update(CLASSGATE_TEST_ORIGIN_HTTP=str(origin.http_port),
                       CLASSGATE_TEST_ORIGIN_HTTPS=str(origin.https_port))
        env.update(env_extra or {})
        env.pop("CLASSGATE_TEST_NOW", None)
        if now:
            env["CLASSGATE_TEST_NOW"] = now
        cmd = [
            str(CLASSGATE), "run", "--policy", str(policy), "--listen", f"127.0.0.1:{self.port}",
            "--metrics", f"127.0.0.1:{self.metrics_port}", "--state-dir", str(state_dir),
            *(["--set", f"scripts={script or HERE / 'proxytest_redirect.py'}"] if redirect else []),
            "--set", f"ssl_verify_upstream_trusted_ca={origin_ca}",
            *(extra or []),
        ]
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - open for the process's life
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        try:
            wait_port(self.port, self.proc, timeout=60)
            self._wait_for_every_worker(extra or [])
        except Exception:  # noqa: BLE001 - re-raised with the proxy's output
            self.stop()
            raise RuntimeError(f"proxy did not start:\n{self.output()}") from None

    def _wait_for_every_worker(self, extra: list[str]) -> None:
        """The port opens with the first worker; a test that edits the policy or counts on every worker must
        not start before the others have loaded (the supervisor prints `workers:` once all of them listen)."""
        count = int(extra[extra.index("--workers") + 1]) if "--workers" in extra else os.cpu_count() or 1
        if count == 1:
            return
        deadline = time.monotonic() + 60
        while "workers:" not in self.output():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the workers did not all start")
            time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def school_ca(self) -> Path:
        return self.state_dir / "ca" / "mitmproxy-ca-cert.pem"

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self._log.closed:
            self._log.close()
            log = self.output()
            if "Traceback" in log and not self.tracebacks_expected:
                raise AssertionError(f"the gateway logged a traceback ({self.log_path}):\n{log[-4000:]}")
        return self.proc.returncode


@pytest.fixture(scope="module")
def proxy(tmp_path_factory, origin, origin_pki):
    d = tmp_path_factory.mktemp("proxy")
    policy = d / "policy.yaml"
    policy.write_text(TEST_POLICY, encoding="utf-8")
    p = ProxyProcess(policy, d / "state", origin, origin_pki.ca)
    yield p
    p.stop()


@dataclass
class CurlResult:
    returncode: int
    status: int
    body: bytes
    stderr: str

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def curl(proxy_url: str, url: str, *, source: str | None = None, cacert: Path | None = None,
         headers: dict[str, str] | None = None, extra: list[str] | None = None, timeout: float = 20) -> CurlResult:
    cmd = ["curl", "-sS", "--max-time", "15", "-x", proxy_url, "-o", "-", "-w", "\n%{http_code}"]
    if source:
        cmd += ["--interface", source]
    if cacert:
        cmd += ["--cacert", str(cacert)]
    for k, v in (headers or {}).items():
        cmd += ["-H", f"{k}: {v}"]
    cmd += [*(extra or []), url]
    r = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
    body, _, code = r.stdout.rpartition(b"\n")
    return CurlResult(r.returncode, int(code or 0), body, r.stderr.decode(errors="replace"))


def peer_certificate_issuer(proxy_port: int, source: str, host: str, cafile: Path) -> str:
    """CONNECT through the proxy from `source`, handshake verifying with `cafile`; the issuer CN seen."""
    sock = socket.create_connection(("127.0.0.1", proxy_port), source_address=(source, 0), timeout=10)
    sock.sendall(f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n".encode())
    reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 200"), reply
    ctx = ssl.create_default_context(cafile=str(cafile))
    with ctx.wrap_socket(sock, server_hostname=host) as tls:
        issuer = dict(x[0] for x in tls.getpeercert()["issuer"])
        return str(issuer["commonName"])
