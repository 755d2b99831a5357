"""The claim `classgate run` holds on its proxy port (agent/port_claim.py)."""

from __future__ import annotations

import pytest

from classgate.agent.port_claim import PortClaimError, claim_port
from classgate.proxy.address import Address
from tests.proxy.proxytest_support import free_port


def test_a_port_is_claimed_once_until_its_claim_ends():
    port = free_port()
    first = claim_port(Address("0.0.0.0", port))
    try:
        with pytest.raises(PortClaimError, match=f"already serves port {port}.*--listen"):
            claim_port(Address("127.0.0.1", port))  # another address, the same port: refused too
        other = claim_port(Address("0.0.0.0", port + 1 if port < 65535 else port - 1))
        other.close()
    finally:
        first.close()
    claim_port(Address("0.0.0.0", port)).close()  # released with its socket: no stale lock
