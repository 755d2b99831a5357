"""The Department stack's nginx config (deploy/compose/nginx/department.conf) in a real nginx.

A real signed repository (`classgate department init` + `publish`) is served by nginx with the shipped
config; a gateway syncs from it over HTTPS with `classgate sync --once`; the cache headers and the
metrics receiver's basic auth are checked. Only what a container would provide is substituted: the
listening address, the mounted paths, and the Prometheus upstream (a recording stand-in here).
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from base64 import b64encode
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from tests.deploy.deploy_helpers import DEPLOY, REPO, VENV_BIN, free_port, need_tool, self_signed_cert

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

CONF = DEPLOY / "compose" / "nginx" / "department.conf"


class Receiver(BaseHTTPRequestHandler):
    """Stands in for Prometheus' remote-write receiver: records what nginx passes on."""

    seen: ClassVar[list[tuple[str, str | None]]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Receiver.seen.append((self.path, self.headers.get("Authorization")))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, **kwargs)


@pytest.fixture(scope="module")
def department():
    nginx = need_tool("nginx", "nginx-light")
    openssl = need_tool("openssl", "openssl")
    # nginx's workers drop to `nobody`: pytest's tmp_path (private to root) would be unreadable.
    work = Path(tempfile.mkdtemp(prefix="classgate-nginx-"))
    os.chmod(work, 0o755)
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    process = None
    try:
        classgate = str(VENV_BIN / "classgate")
        for argv in (
            [classgate, "department", "init", str(work / "dep")],
            [
                classgate,
                "department",
                "publish",
                str(work / "dep"),
                "--policy",
                str(REPO / "policies" / "samples" / "department.yaml"),
            ],
        ):
            result = run(argv)
            assert result.returncode == 0, result.stdout + result.stderr
        tls = work / "tls"
        tls.mkdir()
        self_signed_cert(openssl, tls / "privkey.pem", tls / "fullchain.pem", "policy.test", "IP:127.0.0.1")
        digest = run([openssl, "passwd", "-apr1", "school-secret"]).stdout.strip()
        (work / "receiver.htpasswd").write_text(f"thpt-a:{digest}\n")
        port = free_port()
        conf = (
            CONF.read_text()
            .replace("listen 443 ssl http2;", f"listen 127.0.0.1:{port} ssl http2;")
            .replace("/srv/classgate/repository", str(work / "dep" / "repository"))
            .replace("/etc/nginx/tls/", f"{tls}/")
            .replace("/etc/nginx/receiver.htpasswd", str(work / "receiver.htpasswd"))
            .replace("http://prometheus:9090", f"http://127.0.0.1:{receiver.server_address[1]}")
        )
        (work / "department.conf").write_text(conf)
        (work / "nginx.conf").write_text(
            "daemon off;\nworker_processes 1;\nerror_log stderr warn;\n"
            f"pid {work}/nginx.pid;\nevents {{}}\n"
            "http {\n    include /etc/nginx/mime.types;\n    access_log off;\n"
            + "".join(
                f"    {kind}_temp_path {work}/{kind};\n"
                for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
            )
            + f"    include {work}/department.conf;\n}}\n"
        )
        checked = run([nginx, "-t", "-p", str(work), "-c", str(work / "nginx.conf")])
        assert checked.returncode == 0, checked.stderr
        process = subprocess.Popen(
            [nginx, "-p", str(work), "-c", str(work / "nginx.conf")], stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 10
        while run(["ss", "-Htln", f"sport = :{port}"]).stdout.strip() == "":
            assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
            time.sleep(0.1)
        yield work, f"https://127.0.0.1:{port}"
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=10)
        receiver.shutdown()
        shutil.rmtree(work, ignore_errors=True)


def fetch(work: Path, url: str, data: bytes | None = None, auth: str | None = None):
    context = ssl.create_default_context(cafile=str(work / "tls" / "fullchain.pem"))
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    if auth:
        request.add_header("Authorization", "Basic " + b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return response.status, response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.headers


def test_a_gateway_syncs_through_nginx(department) -> None:
    work, base = department
    state = work / "gateway-state"
    env = {**os.environ, "SSL_CERT_FILE": str(work / "tls" / "fullchain.pem")}
    result = run(
        [
            str(VENV_BIN / "classgate"),
            "sync",
            "--once",
            "--sync-from",
            f"{base}/tuf/",
            "--trust",
            str(work / "dep" / "repository" / "metadata" / "1.root.json"),
            "--state-dir",
            str(state),
        ],
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    status = run([str(VENV_BIN / "classgate"), "status", "--state-dir", str(state), "--json"])
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    # `publish` after `init` made bundle 2 (init publishes none); it is what the gateway now enforces.
    assert (report["state"], report["active_version"], report["last_error"]) == ("ok", 2, None), report
    assert (state / "sync" / "current").resolve().name == "v2"


@pytest.mark.parametrize(
    ("path", "status", "cache_control"),
    [
        ("/tuf/metadata/timestamp.json", 200, "no-cache"),  # changes in place
        ("/tuf/metadata/root.json", 200, "no-cache"),
        ("/tuf/metadata/1.root.json", 200, "public, max-age=31536000, immutable"),  # versioned
        ("/tuf/metadata/2.snapshot.json", 200, "public, max-age=31536000, immutable"),
        ("/tuf/", 403, None),  # no directory listing
        ("/", 404, None),
        ("/tuf/../../etc/passwd", 400, None),
    ],
)
def test_repository_paths_and_cache_headers(department, path: str, status: int, cache_control) -> None:
    work, base = department
    code, headers = fetch(work, base + path)
    assert code == status
    if cache_control:
        assert headers["Cache-Control"] == cache_control


@pytest.mark.parametrize(
    ("auth", "status", "forwarded"),
    [
        (None, 401, False),
        ("thpt-a:wrong", 401, False),
        ("thpt-b:school-secret", 401, False),
        ("thpt-a:school-secret", 204, True),
    ],
)
def test_metrics_receiver_needs_the_schools_password(department, auth, status: int, forwarded: bool) -> None:
    work, base = department
    before = len(Receiver.seen)
    code, _ = fetch(work, base + "/api/v1/write", data=b"\x00snappy", auth=auth)
    assert code == status
    assert [p for p, _ in Receiver.seen[before:]] == (["/api/v1/write"] if forwarded else [])
