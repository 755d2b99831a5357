"""Shared pieces of the DNS tests: raw messages built byte by byte, a real unbound on loopback, dig.

A module of its own (not conftest.py) so that tests import it by a name no other folder shares.
"""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

import pytest

from tests.deploy.deploy_helpers import free_port  # free for TCP and UDP both, as a DNS server needs

A, NS, CNAME, SOA, MX, TXT, AAAA, OPT, RRSIG, SVCB, HTTPS = 1, 2, 5, 6, 15, 16, 28, 41, 46, 64, 65
IN = 1


def name_bytes(name: str) -> bytes:
    out = b""
    for label in name.strip(".").split(".") if name.strip(".") else []:
        out += bytes([len(label)]) + label.encode("ascii")
    return out + b"\0"


def question(name: str, qtype: int = A, qclass: int = IN) -> bytes:
    return name_bytes(name) + struct.pack("!HH", qtype, qclass)


def opt_record(payload: int = 1232, do: bool = False) -> bytes:
    return b"\0" + struct.pack("!HHIH", OPT, payload, 0x8000 if do else 0, 0)


def query_bytes(name: str, qtype: int = A, *, qclass: int = IN, query_id: int = 0x1234, flags: int = 0x0100,
                edns: tuple[int, bool] | None = None) -> bytes:
    """A query as a stub sends it (RD set), with an OPT record when `edns` = (payload, do)."""
    header = struct.pack("!HHHHHH", query_id, flags, 1, 0, 0, 1 if edns else 0)
    return header + question(name, qtype, qclass) + (opt_record(*edns) if edns else b"")


def rr_bytes(name: bytes, rtype: int, rdata: bytes, ttl: int = 300) -> bytes:
    return name + struct.pack("!HHIH", rtype, IN, ttl, len(rdata)) + rdata


def response_bytes(query_id: int, q: bytes, answers: Iterable[bytes] = (), authorities: Iterable[bytes] = (),
                   rcode: int = 0, flags: int = 0x8180) -> bytes:
    answers, authorities = list(answers), list(authorities)
    header = struct.pack("!HHHHHH", query_id, flags | rcode, 1, len(answers), len(authorities), 0)
    return header + q + b"".join(answers) + b"".join(authorities)


def https_rdata(priority: int = 1, target: str = "", params: dict[int, bytes] | None = None) -> bytes:
    out = struct.pack("!H", priority) + name_bytes(target)
    for key, value in sorted((params or {}).items()):
        out += struct.pack("!HH", key, len(value)) + value
    return out


# A real ECHConfigList as Cloudflare publishes it (public name cloudflare-ech.com).
CLOUDFLARE_ECH = ("AEX+DQBB8gAgACDCIaU3P6vz668J2oRRZtptSEwH+1IX8/3TOArEx0tRLAAEAAEAAQASY2xvdWRmbGFyZS1lY2guY29tAAA=")


# --- a real upstream: unbound serving an authoritative zone ------------------------------------------------

def need_unbound() -> str:
    path = shutil.which("unbound") or ("/usr/sbin/unbound" if Path("/usr/sbin/unbound").exists() else None)
    if path is None:
        pytest.skip("unbound is not installed (Debian package `unbound`, see .ci/install)")
    return path


def need_dig() -> str:
    path = shutil.which("dig")
    if path is None:
        pytest.skip("dig is not installed (Debian package `bind9-dnsutils`, see .ci/install)")
    return path


def unbound_conf(directory: Path, zones: dict[str, str], port: int, interface: str = "127.0.0.1") -> Path:
    """An unbound config answering on `interface`:`port`, authoritative for {origin: zone file text}."""
    body = [
        "server:", f"    port: {port}", f"    interface: {interface}", "    do-daemonize: no",
        '    chroot: ""', '    username: ""', f'    directory: "{directory}"', '    pidfile: ""',
        "    use-syslog: no", '    module-config: "iterator"', "    access-control: 0.0.0.0/0 allow",
        "    verbosity: 0", "    log-queries: no",
    ]
    for origin in zones:
        body.append(f'    local-zone: "{origin}." nodefault')  # test. is served locally by default
    for origin, text in zones.items():
        path = directory / f"{origin}.zone"
        path.write_text(text)
        body += ["auth-zone:", f'    name: "{origin}."', f'    zonefile: "{path}"', "    for-downstream: yes",
                 "    for-upstream: no"]
    conf = directory / f"unbound-{port}.conf"
    conf.write_text("\n".join(body) + "\n")
    return conf


class Unbound:
    """unbound on 127.0.0.1:`port`, authoritative for the zones given as {origin: zone file text}."""

    def __init__(self, directory: Path, zones: dict[str, str], port: int | None = None,
                 interface: str = "127.0.0.1") -> None:
        self.port = port or free_port()
        self.directory = directory
        self.conf = unbound_conf(directory, zones, self.port, interface)
        self.log = (directory / f"unbound-{self.port}.log").open("w")
        self.proc = subprocess.Popen([need_unbound(), "-c", str(self.conf)], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"unbound exited: {(directory / f'unbound-{self.port}.log').read_text()}")
            if udp_exchange(("127.0.0.1" if interface == "127.0.0.1" else interface, self.port),
                            query_bytes("ns.test", A), timeout=0.3) is not None:
                return
        raise RuntimeError("unbound did not answer")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def udp_exchange(server: tuple[str, int], data: bytes, *, source: str = "127.0.0.1",
                 timeout: float = 2.0) -> bytes | None:
    """Send one datagram from `source`; the reply, or None on timeout."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.settimeout(timeout)
        sock.sendto(data, server)
        try:
            return sock.recv(65535)
        except (TimeoutError, ConnectionRefusedError):
            return None


def tcp_exchange(server: tuple[str, int], data: bytes, *, source: str = "127.0.0.1",
                 timeout: float = 3.0) -> bytes | None:
    """One length-prefixed message over TCP from `source`; the reply, or None when the server closed."""
    with socket.create_connection(server, timeout=timeout, source_address=(source, 0)) as sock:
        sock.sendall(struct.pack("!H", len(data)) + data)
        head = sock.recv(2)
        if len(head) < 2:
            return None
        (length,) = struct.unpack("!H", head)
        body = b""
        while len(body) < length:
            chunk = sock.recv(length - len(body))
            if not chunk:
                break
            body += chunk
        return body


def dig(port: int, name: str, qtype: str = "A", *, source: str = "127.0.0.1", extra: Iterable[str] = (),
        server: str = "127.0.0.1") -> subprocess.CompletedProcess:
    return subprocess.run(
        [need_dig(), f"@{server}", "-p", str(port), "-b", source, name, qtype, "+time=3", "+tries=1", *extra],
        capture_output=True, text=True, timeout=30, check=False,
    )


def dig_answers(result: subprocess.CompletedProcess) -> list[tuple[str, str, str]]:
    """(name, type, data) of the answer section dig printed (+noall +answer output)."""
    out = []
    for line in result.stdout.splitlines():
        if not line.strip() or line.startswith(";"):
            continue
        parts = line.split(None, 4)
        if len(parts) == 5 and parts[2] == "IN":
            out.append((parts[0].rstrip("."), parts[3], parts[4].strip()))
    return out


def dig_status(result: subprocess.CompletedProcess) -> str | None:
    for line in result.stdout.splitlines():
        if "status:" in line:
            return line.split("status:", 1)[1].split(",", 1)[0].strip()
    return None
