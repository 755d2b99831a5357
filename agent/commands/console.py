"""`classgate console`: the teachers' and admins' web console, its own HTTPS process beside the gateway."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

import click

from classgate.agent.commands.classroom import enforced_policy_option
from classgate.agent.commands.options import AddressParam, overlay_option, state_dir_option
from classgate.agent.console.certificate import CertificateError
from classgate.agent.console.settings import ConsoleSettings
from classgate.metrics.server import DEFAULT_HOST, DEFAULT_PORT
from classgate.proxy.address import Address

DEFAULT_LISTEN = "0.0.0.0:9743"


@click.command()
@click.option("--listen", type=AddressParam(), default=DEFAULT_LISTEN, show_default=True,
              help="Where the console listens (HTTPS). Only the LAN and the gateway itself may open it.")
@state_dir_option
@enforced_policy_option
@overlay_option
@click.option("--metrics", type=AddressParam(), default=f"{DEFAULT_HOST}:{DEFAULT_PORT}", show_default=True,
              help="The gateway's metrics address (`classgate run --metrics`), read for the admins' usage page.")
@click.option("--name", "names", multiple=True, metavar="DNS_NAME",
              help="A name the console is reached by (e.g. console.school.lan), added to its certificate. "
                   "Repeatable.")
def console(listen: Address, state_dir: Path, policy_path: Path | None, overlay_path: Path | None,
            metrics: Address, names: tuple[str, ...]) -> None:
    """Serve the web console: teachers' class actions, admins' usage and "why is this blocked?".

    HTTPS with a certificate issued by the school CA in STATE_DIR/ca (kept in STATE_DIR/console and renewed
    before it expires). Run one per gateway, as the gateway's user, on the gateway's state dir.
    """
    from classgate.agent.console.server import ConsoleServer

    settings = ConsoleSettings(state_dir=state_dir, listen=listen, policy_path=policy_path,
                               overlay_path=overlay_path, metrics=metrics, names=names)
    # The handlers first: the port is open as soon as the server exists, and a SIGTERM from then on (a test,
    # systemd stopping a unit that just started) must stop it cleanly, not kill it.
    stopping = threading.Event()
    started: list[ConsoleServer] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()
        for server in started:  # from another thread: cheroot's stop() waits for its own loop
            threading.Thread(target=server.stop, name="console-stop").start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server = ConsoleServer(settings)
    except CertificateError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {listen}: {exc.strerror or exc}") from None
    host = f"[{listen.host}]" if ":" in listen.host else listen.host
    click.echo(f"console:   https://{host}:{server.port}/  (certificate by the school CA, valid until "
               f"{server.certificate.certificate.not_valid_after_utc:%Y-%m-%d})")
    click.echo(f"usage:     from the gateway's metrics at http://{metrics}")
    started.append(server)
    if stopping.is_set():  # a signal before the line above: stopped before serving
        server.stop()
        return
    server.serve()
