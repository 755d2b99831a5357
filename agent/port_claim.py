"""One gateway per proxy port on a machine: the claim `classgate run` holds while it serves.

Workers share their port with SO_REUSEPORT (agent/master.py), and the kernel lets any process of the same
user join such a port: a second `classgate run --workers N` on the same port (an admin's test run beside the
service, with another policy) would start without an error and take about half of the school's new
connections. Before it binds anything, `classgate run` claims the port with an abstract Unix socket named
after it: the kernel releases the name when the process ends, however it ends (no stale lock file), and
the name lives in the network namespace, as the port does.
"""

from __future__ import annotations

import errno
import socket

from classgate.proxy.address import Address


class PortClaimError(Exception):
    """Another gateway serves this port: says which port and what to do."""


def claim_port(listen: Address) -> socket.socket:
    """Hold the claim on `listen`'s port for as long as the returned socket stays open."""
    claim = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        claim.bind(f"\0classgate-proxy-port-{listen.port}")
    except OSError as e:
        claim.close()
        if e.errno == errno.EADDRINUSE:
            raise PortClaimError(
                f"another classgate gateway already serves port {listen.port} on this machine "
                f"(`systemctl status classgate`, or a `classgate run` in another terminal): stop it first, "
                f"or give this one another port with --listen") from None
        raise PortClaimError(f"cannot claim port {listen.port}: {e.strerror or e}") from None
    claim.set_inheritable(False)  # the workers do not hold it: the claim ends with the supervisor
    return claim
