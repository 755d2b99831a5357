"""deploy/dns/unbound/classgate-upstream-cache.conf: the optional unbound behind classgate's own resolver.

It must only ever answer the gateway itself (the LAN's DNS is classgate's), filter nothing, and work as
classgate's upstream: `classgate run --dns` -> this unbound (the shipped file) -> an "Internet" unbound.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.deploy.deploy_helpers import DEPLOY, REPO, VENV_BIN, free_port, need_tool
from tests.proxy.dnstest_support import Unbound, dig, dig_answers, need_dig, query_bytes, udp_exchange

SHIPPED = DEPLOY / "dns" / "unbound" / "classgate-upstream-cache.conf"


def directives(name: str) -> list[str]:
    return [line.split(":", 1)[1].strip() for line in SHIPPED.read_text().splitlines()
            if line.strip().startswith(name + ":")]


def test_shipped_file_passes_unbound_checkconf() -> None:
    checkconf = need_tool("unbound-checkconf", "unbound")
    result = subprocess.run([checkconf, str(SHIPPED)], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("directive", "expected"),
    [
        ("interface", ["127.0.0.1", "::1"]),  # never the LAN or the WAN
        ("access-control", ["0.0.0.0/0 refuse", "::/0 refuse", "127.0.0.0/8 allow", "::1/128 allow"]),
        ("local-zone", []),  # filters nothing: that is the policy's, in classgate
        ("local-data", []),
        ("log-queries", ["no"]),
    ],
)
def test_it_answers_only_the_gateway_and_filters_nothing(directive: str, expected: list[str]) -> None:
    assert directives(directive) == expected


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_classgate_resolves_through_the_shipped_cache(tmp_path: Path) -> None:
    need_dig()
    unbound = need_tool("unbound", "unbound")
    internet = Unbound(tmp_path, {"test": "$ORIGIN test.\n$TTL 300\n@ IN SOA ns.test. a.test. 1 3600 600 86400 60\n"
                                          "@ IN NS ns.test.\nns IN A 192.0.2.1\nwww.school IN A 192.0.2.44\n"})
    cache_port, dns_port, proxy_port = free_port(), free_port(), free_port()
    conf = tmp_path / "cache.conf"
    conf.write_text(
        f'include: "{SHIPPED}"\n'
        f'server:\n    port: {cache_port}\n    do-daemonize: no\n    chroot: ""\n    username: ""\n'
        f'    directory: "{tmp_path}"\n    pidfile: ""\n    use-syslog: no\n    module-config: "iterator"\n'
        '    do-not-query-localhost: no\n    local-zone: "test." nodefault\n'
        f'forward-zone:\n    name: "."\n    forward-addr: 127.0.0.1@{internet.port}\n'
    )
    policy = tmp_path / "policy.yaml"
    policy.write_text("classgate: 1\nname: cache\ngroups:\n  students: {networks: [127.0.0.3/32]}\n")
    processes: list[subprocess.Popen] = []
    try:
        processes.append(subprocess.Popen([unbound, "-c", str(conf)], stderr=subprocess.PIPE, text=True))
        processes.append(subprocess.Popen(
            [str(VENV_BIN / "classgate"), "run", "--policy", str(policy), "--listen", f"127.0.0.1:{proxy_port}",
             "--metrics", "off", "--state-dir", str(tmp_path / "state"), "--dns", f"127.0.0.1:{dns_port}",
             "--dns-upstream", f"127.0.0.1:{cache_port}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO))
        deadline = time.monotonic() + 40
        while udp_exchange(("127.0.0.1", dns_port), query_bytes("ns.test"), source="127.0.0.3", timeout=0.3) is None:
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                pytest.fail("the chain did not start: " + "".join(
                    (p.stderr or p.stdout).read() for p in processes if p.poll() is not None))  # type: ignore[union-attr]
        answer = dig(dns_port, "www.school.test", source="127.0.0.3", extra=["+noall", "+answer"])
        assert dig_answers(answer) == [("www.school.test", "A", "192.0.2.44")], answer.stdout
    finally:
        for process in processes:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        internet.stop()
