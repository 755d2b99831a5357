"""Transparent-mode throughput: requests per second a client gets through the gateway, proxied by
`classgate run --mode transparent` versus routed straight to the origin (the baseline, same run).

Needs root (network namespaces). Run: .venv/bin/python -m bench.bench_transparent [--requests N]
Uses the three-namespace network of tests/deploy/schoolnet.py and the shipped nftables ruleset; every
loop is bounded by --requests. Each request is a new TCP connection (the proxy's per-connection cost
is what a school's many devices pay), from --workers threads in the client namespace.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from tests.deploy.schoolnet import ORIGIN_IP, SchoolNetwork, load_firewall, write_settings

PROXY_PORT = 8080
POLICY = """\
classgate: 1
name: bench-transparent
categories:
  blocked: {domains: [blocked.test]}
rules:
  - {name: block-test-sites, action: block, categories: [blocked]}
default: allow
tls: {inspect_groups: []}
"""

# Runs inside the client namespace: N requests from W threads, one connection each; prints JSON.
CLIENT = """
import http.client, json, sys, threading, time
host, n, workers, path, vhost = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
ok = [0]; errors = [0]; lock = threading.Lock(); todo = list(range(n))
def work():
    while True:
        with lock:
            if not todo: return
            todo.pop()
        try:
            c = http.client.HTTPConnection(host, 80, timeout=10)
            c.request("GET", path, headers={"Host": vhost, "Connection": "close"})
            r = c.getresponse(); r.read(); c.close()
            with lock: ok[0] += r.status in (200, 403)
        except OSError:
            with lock: errors[0] += 1
start = time.perf_counter()
threads = [threading.Thread(target=work) for _ in range(workers)]
[t.start() for t in threads]; [t.join() for t in threads]
print(json.dumps({"seconds": time.perf_counter() - start, "ok": ok[0], "errors": errors[0]}))
"""


def measure(net: SchoolNetwork, requests: int, workers: int, vhost: str) -> dict:
    out = net.run(
        net.client,
        [sys.executable, "-c", CLIENT, ORIGIN_IP, str(requests), str(workers), "/bench", vhost],
        timeout=600,
    )
    result = json.loads(out.stdout)
    result["rps"] = result["ok"] / result["seconds"]
    return result


def wait_listening(net: SchoolNetwork, proxy: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while not net.run(net.gateway, ["ss", "-Htln", f"sport = :{PROXY_PORT}"]).stdout.strip():
        if proxy.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the proxy did not start")
        time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=16)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="classgate-bench-"))
    os.chmod(work, 0o755)
    (work / "policy.yaml").write_text(POLICY)
    write_settings(work / "nft", PROXY_PORT)
    log = work / "origin.log"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(work / "key.pem"), "-out", str(work / "cert.pem"), "-days", "1", "-subj", "/CN=bench"],
        check=True, capture_output=True,
    )  # fmt: skip
    (work / "chain.pem").write_text((work / "cert.pem").read_text() + (work / "key.pem").read_text())
    processes = []
    with SchoolNetwork() as net:
        try:
            origin = net.popen(
                net.origin,
                [
                    sys.executable,
                    str(REPO / "tests" / "deploy" / "origin_server.py"),
                    "origin",
                    str(log),
                    str(work / "chain.pem"),
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            processes.append(origin)
            assert origin.stdout.readline().strip() == "ready"
            # The origin appends a log line per request; keep that cost out of both measurements alike.
            baseline = measure(net, args.requests, args.workers, "allowed.test")

            load_firewall(net, work / "nft", REPO / "deploy" / "nftables" / "classgate.nft")
            venv = Path(sys.executable).parent
            # Plain mitmproxy in the same mode: what the proxy costs before any classgate addon.
            mitmdump = [
                str(venv / "mitmdump"),
                "--mode",
                "transparent",
                "--listen-port",
                str(PROXY_PORT),
                "-q",
                "--set",
                f"confdir={work / 'mitmconf'}",
            ]
            classgate = [
                str(venv / "classgate"),
                "run",
                "--mode",
                "transparent",
                "--listen",
                f"0.0.0.0:{PROXY_PORT}",
                "--metrics",
                "off",
                "--policy",
                str(work / "policy.yaml"),
                "--state-dir",
                str(work / "state"),
            ]
            results = {"direct (baseline)": baseline}
            for name, argv, vhosts in (
                ("mitmdump, no addons", mitmdump, ["allowed.test"]),
                ("classgate", classgate, ["allowed.test", "blocked.test"]),
            ):
                proxy = net.popen(
                    net.gateway, argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO
                )
                processes.append(proxy)
                wait_listening(net, proxy)
                for vhost in vhosts:
                    results[f"{name}: {vhost}"] = measure(net, args.requests, args.workers, vhost)
                proxy.terminate()
                proxy.wait(timeout=10)
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=10)
            shutil.rmtree(work, ignore_errors=True)
    print(f"requests per run: {args.requests}, client threads: {args.workers}, new connection per request")
    for name, r in results.items():
        ratio = r["rps"] / baseline["rps"]
        print(f"{name:30s} {r['rps']:8.0f} req/s  {ratio:5.2f}x baseline  (errors: {r['errors']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
