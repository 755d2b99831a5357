"""deploy/pac/proxy.pac: sends the web to the classgate port and never falls back to going direct."""

from __future__ import annotations

import re

from tests.deploy.deploy_helpers import DEPLOY

PAC = (DEPLOY / "pac" / "proxy.pac").read_text()


def test_pac_sends_web_to_the_proxy_port_the_gateway_uses() -> None:
    port = re.search(r"define PROXY_PORT = (\d+)", (DEPLOY / "nftables" / "settings.nft").read_text()).group(
        1
    )
    assert "function FindProxyForURL(url, host)" in PAC
    returns = re.findall(r'return "([^"]*)";', PAC)
    assert returns[-1] == f"PROXY 10.10.0.1:{port}"  # the default branch, last


def test_pac_has_no_direct_fallback_when_the_proxy_is_down() -> None:
    # "PROXY a; DIRECT" would let every device bypass the filter whenever the gateway is down.
    assert not re.search(r"PROXY [^\"]*;\s*DIRECT", PAC)


def test_pac_resolves_no_names_for_local_checks() -> None:
    # isInNet() on a host name makes a DNS lookup per request; only address literals reach it.
    for line_no, line in enumerate(PAC.splitlines(), 1):
        if "isInNet(host" in line:
            block = "\n".join(PAC.splitlines()[max(0, line_no - 6) : line_no])
            assert r"/^\d+\.\d+\.\d+\.\d+$/.test(host)" in block, line
