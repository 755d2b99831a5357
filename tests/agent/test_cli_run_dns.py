"""`classgate run --dns` exit paths that end before the proxy starts: clear errors, no tracebacks; and the
settings the options build."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from click.testing import CliRunner

from classgate.agent.cli import main
from classgate.agent.commands.run import _dns_config
from classgate.proxy.address import Address
from classgate.proxy.dns.config import PRIVATE_NETWORKS


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--dns-upstream", "192.0.2.53"], 2, "need --dns HOST:PORT"),
        (["--dns-allow", "10.0.0.0/8"], 2, "need --dns HOST:PORT"),
        (["--dns", "resolver.example:53"], 2, "listen on an IP address"),
        (["--dns", "127.0.0.1:x"], 2, "port must be a number"),
        (["--dns", "127.0.0.1:0", "--dns-upstream", "dns.google"], 2, "an upstream is an IP address"),
        (["--dns", "127.0.0.1:0", "--dns-upstream", "192.0.2.1:0"], 2, "between 1 and 65535"),
        (["--dns", "127.0.0.1:0", "--dns-allow", "10.0.0.0/33"], 2, "expected a network"),
        (["--dns", "127.0.0.1:0", "--dns-rate", "0"], 2, "--dns-rate"),
        (["--dns", "127.0.0.1:5399", "--dns-upstream", "127.0.0.1:5399"], 1, "the queries would loop"),
        (["--dns", "0.0.0.0:5399", "--dns-upstream", "127.0.0.1:5399"], 1, "the queries would loop"),
    ],
)
def test_usage_errors(tmp_path, args, code, message):
    result = CliRunner().invoke(main, ["run", "--state-dir", str(tmp_path), "--metrics", "off", *args])
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("kind", [socket.SOCK_DGRAM, socket.SOCK_STREAM])
def test_dns_port_in_use_is_a_clean_error(tmp_path, kind):
    with socket.socket(socket.AF_INET, kind) as busy:
        busy.bind(("127.0.0.1", 0))
        if kind == socket.SOCK_STREAM:
            busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(main, ["run", "--state-dir", str(tmp_path), "--metrics", "off", "--dns",
                                           f"127.0.0.1:{port}", "--dns-upstream", "192.0.2.53"])
    assert result.exit_code == 1, result.output
    assert f"cannot serve DNS on 127.0.0.1:{port}" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("listen", "upstreams", "allow", "rate", "expected"),
    [
        ("0.0.0.0:8053", (), (), 100.0,
         (Address("0.0.0.0", 8053), (), PRIVATE_NETWORKS, 100.0, 400.0)),
        ("[::]:8053", ("192.0.2.53", "[2001:db8::53]:5353"), ("10.10.0.0/16",), 20.0,
         (Address("::", 8053), (Address("192.0.2.53", 53), Address("2001:db8::53", 5353)),
          (ipaddress.ip_network("10.10.0.0/16"),), 20.0, 80.0)),
    ],
)
def test_options_build_one_config(listen, upstreams, allow, rate, expected):
    config = _dns_config(listen, upstreams, allow, rate)
    assert (config.listen, config.upstreams, config.allow, config.rate, config.burst) == expected
