"""deploy/department/: the shipped nginx config really serves a repository that gateways sync from, with the
cache headers it promises; the systemd units pass `systemd-analyze verify`."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "department"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def loopback_variant(conf: str, port: int, root: Path, fleet_port: int, logs: Path) -> str:
    """The shipped config with only what a test must change: plain HTTP on loopback, paths, fleet port."""
    conf = re.sub(r"^\s*listen 443 ssl http2;.*$", f"    listen 127.0.0.1:{port};", conf, flags=re.MULTILINE)
    conf = re.sub(r"^\s*listen \[::\]:443.*\n", "", conf, flags=re.MULTILINE)
    conf = re.sub(r"^\s*ssl_certificate.*\n", "", conf, flags=re.MULTILINE)
    conf = conf.replace("/srv/classgate/department/repository", str(root))
    conf = re.sub(r"access_log \S+", f"access_log {logs / 'access.log'}", conf)
    conf = conf.replace("127.0.0.1:8090", f"127.0.0.1:{fleet_port}")
    conf = conf.replace("allow 10.0.0.0/8;", "allow 127.0.0.1;")
    # Port 443 as a word: the free port put in its place may itself contain the digits (34443).
    assert not re.search(r"(?<!\d)443(?!\d)", conf) and "/srv/" not in conf
    return conf


@pytest.mark.e2e
@pytest.mark.timeout(60)
def test_nginx_config_serves_a_repository_gateways_sync_from(department_template, tmp_path, gateway_factory):
    nginx = shutil.which("nginx") or (Path("/usr/sbin/nginx") if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        pytest.skip("nginx is not installed")
    from classgate.agent.department.server import make_server

    repo = department_template.copy(tmp_path / "department")
    (repo / "keys" / "marker").write_text("secret")
    fleet = make_server(repo)
    import threading

    threading.Thread(target=fleet.serve_forever, args=(0.05,), daemon=True).start()
    port = free_port()
    logs = tmp_path / "nginx"
    for d in ("logs", "body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (logs / d).mkdir(parents=True)
    site = loopback_variant((DEPLOY / "nginx.conf").read_text(), port, repo / "repository",
                            fleet.server_address[1], logs)
    main = logs / "nginx.conf"
    main.write_text(f"""user root;
worker_processes 1;
daemon off;
pid {logs}/nginx.pid;
error_log {logs}/error.log;
events {{ worker_connections 64; }}
http {{
    include /etc/nginx/mime.types;
    client_body_temp_path {logs}/body;
    proxy_temp_path {logs}/proxy;
    fastcgi_temp_path {logs}/fastcgi;
    uwsgi_temp_path {logs}/uwsgi;
    scgi_temp_path {logs}/scgi;
{site}
}}
""")
    check = subprocess.run([str(nginx), "-t", "-c", str(main), "-p", str(logs)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen([str(nginx), "-c", str(main), "-p", str(logs)], stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 10
        while True:
            try:
                requests.get(base + "metadata/timestamp.json", timeout=1)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.1)
        gw = gateway_factory(base, repo / "repository" / "metadata" / "1.root.json")
        gw.start()
        assert gw.sync(), gw.status
        assert gw.status["active_version"] == 3

        def cache(path: str) -> tuple[int, str | None]:
            r = requests.get(base + path, timeout=5)
            return r.status_code, r.headers.get("Cache-Control")

        assert cache("metadata/timestamp.json") == (200, "no-cache, max-age=0")
        assert cache("metadata/1.root.json") == (200, "public, max-age=31536000, immutable")
        assert cache("metadata/2.root.json") == (404, "no-store")  # the probe for a rotation: never cached
        target = next(p for p in (repo / "repository" / "targets").iterdir() if p.name.endswith("bundle.json"))
        assert cache(f"targets/{target.name}") == (200, "public, max-age=31536000, immutable")
        for secret in ("keys/marker", "../keys/marker", "department.json", "metadata/", "targets/"):
            assert requests.get(base + secret, timeout=5).status_code in (403, 404), secret
        report = requests.post(base + "report", json={"gateway": "gw-1", "state": "ok", "active_version": 3},
                               timeout=5)
        assert report.status_code == 200
        assert requests.get(base + "fleet", timeout=5).json()["versions"] == {"3": 1}
        assert requests.get(base + "report", timeout=5).status_code == 403  # only POST
    finally:
        proc.terminate()
        proc.wait(10)
        fleet.shutdown()
        fleet.server_close()


@pytest.mark.parametrize("unit", ["classgate-department-refresh.service", "classgate-department-refresh.timer",
                                  "classgate-department-fleet.service"])
def test_systemd_units_verify(unit, tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    for f in DEPLOY.glob("classgate-department-*"):
        shutil.copy(f, tmp_path / f.name)
    result = subprocess.run([analyze, "verify", "--man=no", str(tmp_path / unit)], capture_output=True, text=True, check=False)
    # classgate not installed in /usr/local/bin on a CI machine is the environment, not a unit error;
    # anything else (an unknown key, a bad value) is printed as "file:line: ..." and fails the test.
    problems = [line for line in result.stderr.splitlines()
                if line.strip() and "Command /usr/local/bin/classgate is not executable" not in line]
    assert not problems, result.stderr
