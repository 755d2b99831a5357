"""A three-namespace school network for transparent-mode tests: client | gateway | origin.

    client ns                 gateway ns                          origin ns
    c0 10.99.0.2/24 ── veth ── g0 10.99.0.1/24 (LAN)  g1 10.99.1.1/24 ── veth ── o0 10.99.1.2/24
    default via 10.99.0.1      ip_forward=1, nftables, classgate  default via 10.99.1.1  (+ 10.99.1.3)
    (and the same in IPv6: fd99::/64 on the LAN side, fd99:1::/64 on the origin side)

The addresses exist only inside namespaces this module creates (names carry a random suffix, so
parallel runs never meet) and nothing is routed out of them. Everything is removed by `close()`.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Self

CLIENT_IP = "10.99.0.2"
GATEWAY_LAN_IP = "10.99.0.1"
GATEWAY_WAN_IP = "10.99.1.1"
ORIGIN_IP = "10.99.1.2"
ORIGIN_DOH_IP = "10.99.1.3"  # a second origin address, put in the DoH set by the tests
ORIGIN_OTHER_IP = "10.99.1.4"  # a third: "any server" on the Internet, which no test name resolves to
# IPv6 alongside (unique local addresses, nowhere else): client fd99::2, gateway fd99::1 and
# fd99:1::1, origin fd99:1::2.
CLIENT_IP6, GATEWAY_LAN_IP6, GATEWAY_WAN_IP6, ORIGIN_IP6 = "fd99::2", "fd99::1", "fd99:1::1", "fd99:1::2"
LAN_IF = "g0"


class NetnsUnavailable(Exception):
    """Namespaces cannot be made here (not root, no `ip`, or a kernel without netns/veth)."""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


class SchoolNetwork:
    def __init__(self) -> None:
        suffix = secrets.token_hex(3)
        self.client = f"cg-client-{suffix}"
        self.gateway = f"cg-gw-{suffix}"
        self.origin = f"cg-origin-{suffix}"
        self._made: list[str] = []
        self._etc: list[Path] = []  # /etc/netns/<ns> folders this network wrote

    def __enter__(self) -> Self:
        if shutil.which("ip") is None:
            raise NetnsUnavailable("the `ip` command (iproute2) is not installed")
        try:
            self._build()
        except subprocess.CalledProcessError as exc:
            self.close()
            raise NetnsUnavailable(f"`{' '.join(exc.cmd)}` failed: {exc.stderr.strip()}") from exc
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _build(self) -> None:
        for ns in (self.client, self.gateway, self.origin):
            _ip("netns", "add", ns)
            self._made.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        # Created inside the namespaces, so the root namespace never sees (or clashes on) the names.
        _ip(
            "-n",
            self.client,
            "link",
            "add",
            "c0",
            "type",
            "veth",
            "peer",
            "name",
            LAN_IF,
            "netns",
            self.gateway,
        )
        _ip(
            "-n",
            self.origin,
            "link",
            "add",
            "o0",
            "type",
            "veth",
            "peer",
            "name",
            "g1",
            "netns",
            self.gateway,
        )
        for ns, dev, addrs in (
            (self.client, "c0", [f"{CLIENT_IP}/24", f"{CLIENT_IP6}/64"]),
            (self.gateway, LAN_IF, [f"{GATEWAY_LAN_IP}/24", f"{GATEWAY_LAN_IP6}/64"]),
            (self.gateway, "g1", [f"{GATEWAY_WAN_IP}/24", f"{GATEWAY_WAN_IP6}/64"]),
            (self.origin, "o0", [f"{ORIGIN_IP}/24", f"{ORIGIN_DOH_IP}/24", f"{ORIGIN_OTHER_IP}/24",
                                 f"{ORIGIN_IP6}/64"]),
        ):
            for addr in addrs:
                # nodad: usable at once, instead of after duplicate address detection (~2 s).
                _ip("-n", ns, "addr", "add", addr, "dev", dev, *(["nodad"] if ":" in addr else []))
            _ip("-n", ns, "link", "set", dev, "up")
        _ip("-n", self.client, "route", "add", "default", "via", GATEWAY_LAN_IP)
        _ip("-n", self.origin, "route", "add", "default", "via", GATEWAY_WAN_IP)
        _ip("-n", self.client, "-6", "route", "add", "default", "via", GATEWAY_LAN_IP6)
        _ip("-n", self.origin, "-6", "route", "add", "default", "via", GATEWAY_WAN_IP6)
        self.run(
            self.gateway, ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"]
        )

    def run(
        self, ns: str, argv: list[str], timeout: float = 20, check: bool = True
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, timeout=timeout, check=check
        )

    def popen(self, ns: str, argv: list[str], **kwargs) -> subprocess.Popen:
        return subprocess.Popen(["ip", "netns", "exec", ns, *argv], **kwargs)

    def set_hosts(self, ns: str, names: dict[str, str]) -> None:
        """How `ns` resolves names: /etc/netns/<ns>/hosts, which `ip netns exec` puts over /etc/hosts."""
        folder = Path("/etc/netns") / ns
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "hosts").write_text("127.0.0.1 localhost\n" + "".join(f"{ip} {name}\n" for name, ip in names.items()))
        self._etc.append(folder)

    def set_resolv(self, ns: str, nameserver: str) -> None:
        """Which resolver `ns` asks: /etc/netns/<ns>/resolv.conf, put over /etc/resolv.conf like the hosts file."""
        folder = Path("/etc/netns") / ns
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "resolv.conf").write_text(f"nameserver {nameserver}\noptions timeout:2 attempts:1\n")
        self._etc.append(folder)

    def close(self) -> None:
        for folder in self._etc:
            shutil.rmtree(folder, ignore_errors=True)
        self._etc.clear()
        # Deleting a namespace removes its veth ends and, with them, the peers in the others.
        while self._made:
            ns = self._made.pop()
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10, check=False)


def load_firewall(net: SchoolNetwork, settings_dir: Path, ruleset: Path) -> None:
    """Load the shipped ruleset in the gateway namespace with test settings (and DoH elements)."""
    net.run(net.gateway, ["nft", "-I", str(settings_dir), "-f", str(ruleset)])


SHIPPED_SETTINGS = Path(__file__).resolve().parents[2] / "deploy" / "nftables" / "settings.nft"


def write_settings(settings_dir: Path, proxy_port: int, dns_port: int = 53,
                   allow_ipv4: str | None = None) -> None:
    """The shipped settings.nft with the test's interface and ports (and, if given, its LAN_ALLOW_IPV4)."""
    settings_dir.mkdir(parents=True, exist_ok=True)
    values = {"LAN_IF": f'"{LAN_IF}"', "PROXY_PORT": str(proxy_port), "DNS_PORT": str(dns_port)}
    if allow_ipv4 is not None:
        values["LAN_ALLOW_IPV4"] = allow_ipv4
    lines = []
    for line in SHIPPED_SETTINGS.read_text().splitlines():
        name = line.split()[1] if line.startswith("define ") else None
        lines.append(f"define {name} = {values[name]}" if name in values else line)
    (settings_dir / "settings.nft").write_text("\n".join(lines) + "\n")
