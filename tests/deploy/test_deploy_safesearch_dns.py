"""DNS-level SafeSearch (deploy/dns/): the generator, the shipped files, and a real unbound answering.

The resolver test runs two unbound processes on loopback: the school resolver with the shipped
configs, and an "Internet" unbound it forwards to that knows the engines' SafeSearch hosts. So
the answer a device gets is the one a gateway would give: the CNAME from our config, then the
address of the target resolved the ordinary way.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mitmproxy import dns
from mitmproxy.net.dns import classes, response_codes, types

from tests.deploy.deploy_helpers import DEPLOY, free_port, need_tool

SCRIPT = DEPLOY / "dns" / "make-safesearch-dns"
UNBOUND_DIR = DEPLOY / "dns" / "unbound"
SHIPPED = UNBOUND_DIR / "classgate-safesearch.conf"


def generate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=30, check=False
    )


def test_shipped_config_is_the_generators_default_output() -> None:
    result = generate()
    assert result.returncode == 0, result.stderr
    assert SHIPPED.read_text() == result.stdout, "regenerate: deploy/dns/make-safesearch-dns -o " + str(
        SHIPPED
    )


@pytest.mark.parametrize(
    ("args", "host", "target"),
    [
        ([], "www.google.com.vn", "forcesafesearch.google.com"),
        ([], "www.google.com", "forcesafesearch.google.com"),
        ([], "www.bing.com", "strict.bing.com"),
        ([], "duckduckgo.com", "safe.duckduckgo.com"),
        ([], "www.youtube.com", "restrictmoderate.youtube.com"),
        ([], "youtubei.googleapis.com", "restrictmoderate.youtube.com"),
        (["--youtube", "strict"], "m.youtube.com", "restrict.youtube.com"),
        (["--bing", "moderate"], "www.bing.com", "strict.bing.com"),  # Bing has no moderate host
        (["--youtube", "off"], "www.youtube.com", None),
        (["--google", "off"], "www.google.com.vn", None),
    ],
)
def test_levels_choose_the_cname(args: list[str], host: str, target: str | None) -> None:
    text = generate(*args).stdout
    line = f'    local-data: "{host}. CNAME {target}."'
    if target is None:
        assert f'"{host}.' not in text
    else:
        assert line in text and f'    local-zone: "{host}." redirect' in text


def test_google_domains_file_replaces_the_built_in_list(tmp_path: Path) -> None:
    (tmp_path / "supported_domains").write_text(".google.com\n.google.com.vn\n\n")
    text = generate("--google-domains", str(tmp_path / "supported_domains")).stdout
    google = [line for line in text.splitlines() if "forcesafesearch" in line and "local-data" in line]
    assert google == [
        '    local-data: "www.google.com. CNAME forcesafesearch.google.com."',
        '    local-data: "www.google.com.vn. CNAME forcesafesearch.google.com."',
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("<html>sign in</html>\n", "expected a Google domain like `.google.com.vn`"),
        ("# nothing\n\n", "no Google domain found"),
        (None, "cannot read"),
    ],
)
def test_bad_google_domains_file(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "supported_domains"
    if content is not None:
        path.write_text(content)
    out = tmp_path / "out.conf"
    result = generate("--google-domains", str(path), "-o", str(out))
    assert result.returncode == 2 and message in result.stderr
    assert not out.exists()


def test_built_in_google_list_has_vietnam_and_no_duplicates(safesearch_script) -> None:
    domains = safesearch_script.GOOGLE_DOMAINS
    assert "google.com.vn" in domains and len(domains) == len(set(domains)) > 150


@pytest.mark.parametrize("name", ["classgate-resolver.conf", "classgate-safesearch.conf"])
def test_shipped_unbound_files_pass_unbound_checkconf(name: str) -> None:
    checkconf = need_tool("unbound-checkconf", "unbound")
    result = subprocess.run(
        [checkconf, str(UNBOUND_DIR / name)], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- a real resolver -----------------------------------------------------------------------------

# What the "Internet" knows: the engines' SafeSearch hosts and one ordinary site.
UPSTREAM_RECORDS = {
    "forcesafesearch.google.com": "216.239.38.120",
    "strict.bing.com": "204.79.197.220",
    "safe.duckduckgo.com": "52.142.124.215",
    "restrictmoderate.youtube.com": "216.239.38.119",
    "www.moet.gov.vn": "203.162.0.1",
}


def unbound_conf(directory: Path, port: int, body: str) -> Path:
    conf = directory / f"unbound-{port}.conf"
    conf.write_text(
        "server:\n"
        f"    port: {port}\n"
        "    do-daemonize: no\n"
        '    chroot: ""\n'
        '    username: ""\n'
        f'    directory: "{directory}"\n'
        '    pidfile: ""\n'
        "    use-syslog: no\n"
        '    module-config: "iterator"\n'
        "    do-not-query-localhost: no\n" + body
    )
    return conf


def query(port: int, name: str, qtype: int = types.A) -> dns.Message:
    message = dns.Message(
        timestamp=time.time(),
        id=0x4242,
        query=True,
        op_code=0,
        authoritative_answer=False,
        truncation=False,
        recursion_desired=True,
        recursion_available=False,
        reserved=0,
        response_code=0,
        questions=[dns.Question(name, qtype, classes.IN)],
        answers=[],
        authorities=[],
        additionals=[],
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(message.packed, ("127.0.0.1", port))
        return dns.Message.unpack(sock.recv(65535))


@pytest.fixture(scope="module")
def school_resolver(tmp_path_factory):
    """The school resolver on 127.0.0.1:PORT with the shipped configs, forwarding to a fake Internet."""
    unbound = need_tool("unbound", "unbound")
    directory = tmp_path_factory.mktemp("unbound")
    upstream_port, port = free_port(), free_port()
    upstream_body = "    interface: 127.0.0.1\n    access-control: 127.0.0.0/8 allow\n" + "".join(
        f'    local-zone: "{name}." static\n    local-data: "{name}. A {ip}"\n'
        for name, ip in UPSTREAM_RECORDS.items()
    )
    (directory / "classgate-doh.conf").write_text(
        'server:\n    local-zone: "dns.google." always_nxdomain\n'  # as make-doh-blocklist writes it
    )
    school_body = (
        f'include: "{UNBOUND_DIR / "classgate-resolver.conf"}"\n'
        f'include: "{SHIPPED}"\n'
        f'include: "{directory / "classgate-doh.conf"}"\n'
        # As shipped it listens on every address (port chosen free above); access-control keeps
        # anyone but loopback and private networks out.
        f'forward-zone:\n    name: "."\n    forward-addr: 127.0.0.1@{upstream_port}\n'
    )
    processes = []
    try:
        for conf in (
            unbound_conf(directory, upstream_port, upstream_body),
            unbound_conf(directory, port, school_body),
        ):
            checked = subprocess.run(
                ["unbound-checkconf", str(conf)], capture_output=True, text=True, timeout=30, check=False
            )
            assert checked.returncode == 0, checked.stdout + checked.stderr
            processes.append(subprocess.Popen([unbound, "-c", str(conf)], stderr=subprocess.PIPE, text=True))
        deadline = time.monotonic() + 10
        while True:
            try:
                query(port, "www.moet.gov.vn")
                break
            except OSError:
                if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                    raise RuntimeError(
                        "unbound did not start: "
                        + "".join(p.stderr.read() for p in processes if p.poll() is not None)
                    )
                time.sleep(0.1)
        yield port
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


def answers(message: dns.Message) -> list[tuple[str, str, str]]:
    return [(rr.name, types.to_str(rr.type), str(rr)) for rr in message.answers]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "www.google.com.vn",
            [
                ("www.google.com.vn", "CNAME", "forcesafesearch.google.com"),
                ("forcesafesearch.google.com", "A", "216.239.38.120"),
            ],
        ),
        (
            "www.google.fr",
            [
                ("www.google.fr", "CNAME", "forcesafesearch.google.com"),
                ("forcesafesearch.google.com", "A", "216.239.38.120"),
            ],
        ),
        (
            "www.bing.com",
            [("www.bing.com", "CNAME", "strict.bing.com"), ("strict.bing.com", "A", "204.79.197.220")],
        ),
        (
            "start.duckduckgo.com",
            [
                ("start.duckduckgo.com", "CNAME", "safe.duckduckgo.com"),
                ("safe.duckduckgo.com", "A", "52.142.124.215"),
            ],
        ),
        (
            "www.youtube.com",
            [
                ("www.youtube.com", "CNAME", "restrictmoderate.youtube.com"),
                ("restrictmoderate.youtube.com", "A", "216.239.38.119"),
            ],
        ),
        ("www.moet.gov.vn", [("www.moet.gov.vn", "A", "203.162.0.1")]),  # everything else: untouched
        # The CA page's name goes through the gateway, where the firewall hands it to classgate.
        ("classgate.ca", [("classgate.ca", "A", "192.0.2.80")]),
    ],
)
def test_resolver_forces_safesearch(school_resolver: int, name: str, expected: list) -> None:
    reply = query(school_resolver, name)
    assert reply.response_code == response_codes.NOERROR
    assert answers(reply) == expected


@pytest.mark.parametrize("name", ["dns.google", "x.dns.google", "use-application-dns.net"])
def test_resolver_answers_nxdomain_for_doh_and_firefox_canary(school_resolver: int, name: str) -> None:
    assert query(school_resolver, name).response_code == response_codes.NXDOMAIN
