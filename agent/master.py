"""The mitmproxy master `classgate run` serves with: only the mitmproxy addons a gateway needs.

mitmproxy's DumpMaster loads ~35 addons (its tools: replay, export, rewriting, saving, the console's
history...) and mitmproxy hands every event to each of them, so every request pays for tools a gateway
never uses. `NEEDED` is what classgate keeps, each with why, in DumpMaster's order (the order events reach
them); `NOT_NEEDED` says why each of the others is left out. tests/agent/test_master.py pins both against
the installed mitmproxy's DumpMaster, so an upgrade that adds an addon fails there until it is sorted into
one table or the other.

The addons are found by module and class name, not imported at the top: mitmproxy moves an addon now and
then, and a missing one must fail with its name (`MasterError`), not with an ImportError at start-up.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from classgate.agent.gateway import Gateway
from classgate.proxy.address import Address

if TYPE_CHECKING:
    from mitmproxy.master import Master
    from mitmproxy.options import Options

log = logging.getLogger(__name__)


class MasterError(Exception):
    """The installed mitmproxy lacks an addon the gateway needs, or refuses an option: says which."""


@dataclass(frozen=True)
class NeededAddon:
    name: str  # mitmproxy's name for it (the `name` attribute, or the class name in lower case)
    module: str  # where mitmproxy 11 and 12 define it (or ours, built on mitmproxy's: early_layer.py)
    cls: str
    why: str
    only_with_option: str | None = None  # loaded only when this option is given (--set OPTION=...)


# In DumpMaster's order. termlog is added by mitmproxy's Master itself (with_termlog=True).
NEEDED: Final[tuple[NeededAddon, ...]] = (
    NeededAddon("block", "mitmproxy.addons.block", "Block",
                "refuses clients from public addresses (block_global): the gateway is never an open proxy"),
    NeededAddon("disableh2c", "mitmproxy.addons.disable_h2c", "DisableH2C",
                "drops HTTP/1.1 Upgrade: h2c and kills cleartext HTTP/2 prior knowledge, which mitmproxy cannot "
                "parse: otherwise a tunnel of requests the filter never sees"),
    NeededAddon("proxyserver", "mitmproxy.addons.proxyserver", "Proxyserver",
                "the proxy itself: listens, runs the connections, owns connection_strategy and stream_large_bodies"),
    NeededAddon("scriptloader", "mitmproxy.addons.script", "ScriptLoader",
                "--set scripts=FILE (an admin's own addon, the tests' upstream redirect, the bench's loop probe)",
                only_with_option="scripts"),
    NeededAddon("nextlayer", "classgate.proxy.addons.early_layer", "DecidingNextLayer",
                "decides each connection's protocol layer (TLS, HTTP, TCP): without it nothing is parsed. "
                "mitmproxy's NextLayer that asks classgate first about TLS, so a passthrough is a plain relay"),
    NeededAddon("tlsconfig", "mitmproxy.addons.tlsconfig", "TlsConfig",
                "the school CA's certificates for intercepted TLS, and upstream certificate verification"),
    NeededAddon("errorcheck", "mitmproxy.addons.errorcheck", "ErrorCheck",
                "exits with status 1 when the start logged an error (a port taken): a gateway that is not "
                "listening must not look started"),
)

NOT_NEEDED: Final[dict[str, str]] = {
    "core": "its commands serve the interactive tools; its one check concerns upstream_cert options classgate "
            "does not use",
    "browser": "starts a desktop browser (mitmproxy's `browser.start` command)",
    "stripdnshttpsrecords": "acts on mitmproxy's own DNS mode; classgate's resolver strips ECH itself "
                            "(proxy/dns/ech_strip.py)",
    "blocklist": "mitmproxy's static block list: classgate's filter decides every request",
    "anticache": "rewrites cache headers, off by default and never wanted on a gateway",
    "anticomp": "asks servers not to compress, off by default",
    "clientplayback": "replays saved flows",
    "serverplayback": "answers from saved flows",
    "commandhistory": "the console's command history file",
    "comment": "a console command",
    "cut": "a console command",
    "export": "a console command (flows as curl, HAR...)",
    "onboarding": "mitm.it; classgate serves its own CA page (proxy/addons/ca_page.py)",
    "proxyauth": "proxy passwords; classgate tells devices apart by network, not by login",
    "dnsresolver": "answers mitmproxy's DNS mode; classgate runs its own resolver (--dns, proxy/dns/)",
    "mapremote": "URL rewriting, a debugging tool",
    "maplocal": "answers from local files, a debugging tool",
    "modifybody": "body rewriting, a debugging tool",
    "modifyheaders": "header rewriting, a debugging tool",
    "stickyauth": "replays authorization headers across clients: wrong for a school",
    "stickycookie": "replays cookies across clients: wrong for a school",
    "save": "writes every flow to a file (students' traffic on disk)",
    "savehar": "writes flows as HAR",
    "upstreamauth": "credentials for an upstream proxy; classgate connects directly",
    "updatealtsvc": "rewrites Alt-Svc in reverse-proxy mode, which classgate does not use",
    "dumper": "prints every request with the client's address and full URL (privacy)",
    "keepserving": "stops mitmdump after reading a flow file or a replay; the gateway serves until stopped",
    "readfilestdin": "reads flows from a file or stdin",
}


def _load_addon(spec: NeededAddon) -> object:
    try:
        module = importlib.import_module(spec.module)
        return getattr(module, spec.cls)()
    except (ImportError, AttributeError) as e:
        raise MasterError(f"this mitmproxy has no {spec.module}.{spec.cls} ({spec.name}: {spec.why}): {e}") from None


def needed_addons(options_given: Iterable[str] = ()) -> list[object]:
    """The mitmproxy addons of `NEEDED`, those tied to an option only when that option is given."""
    given = set(options_given)
    return [_load_addon(s) for s in NEEDED if s.only_with_option is None or s.only_with_option in given]


def lean_master(opts: Options, options_given: Iterable[str] = ()) -> Master:
    """A mitmproxy Master with termlog and `NEEDED` (call inside a running event loop, as mitmproxy requires).

    Without mitmproxy's deprecated `add_log` events: its Master turns every log record, DEBUG included
    (mitmproxy logs four per connection), into a formatted entry and an event for every addon, which no addon
    here listens to; addons written for mitmproxy 9 and later use Python's logging. That was ~5% of the CPU
    of a passed-through connection (py-spy on bench_proxy's passthrough). An admin's own `--set scripts`
    addon that still implements `add_log` gets no calls."""
    from mitmproxy import log as mitmproxy_log
    from mitmproxy.master import Master

    master = Master(opts, with_termlog=True)
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, mitmproxy_log.LegacyLogEvents)]:
        root.removeHandler(handler)
    master.addons.add(*needed_addons(options_given))
    return master


def shared_port_loop(listen: Address) -> Callable[[], asyncio.AbstractEventLoop]:
    """An event loop factory whose servers on `listen`'s port set SO_REUSEPORT.

    mitmproxy binds its proxy port with asyncio.start_server and offers no way to pass reuse_port; this is
    the seam under it. With SO_REUSEPORT every worker binds the same address and the kernel spreads new
    connections over their sockets (by a hash of the connection's addresses): no userspace balancer, and a
    transparent-mode connection keeps its original destination (the redirect is conntrack's, not ours).
    """

    class SharedPortLoop(asyncio.SelectorEventLoop):
        async def create_server(self, protocol_factory: Any, host: Any = None, port: Any = None,
                                **kwargs: Any) -> asyncio.Server:
            if port == listen.port and kwargs.get("reuse_port") is None:
                kwargs["reuse_port"] = True
            return await super().create_server(protocol_factory, host, port, **kwargs)

    return SharedPortLoop


def log_times_in(zone: str) -> None:
    """Log lines carry times in the policy's zone, the one admins read schedules in (mitmproxy's log formatter
    uses local time; the gateway's own system zone is often left at UTC)."""
    if os.environ.get("TZ") != zone:
        os.environ["TZ"] = zone
        time.tzset()


def run_master(serve: Callable[[], Any], listen: Address, share_port: bool) -> None:
    """Run the coroutine function `serve` to the end, on a shared-port loop when workers share `listen`."""
    with asyncio.Runner(loop_factory=shared_port_loop(listen) if share_port else None) as runner:
        runner.run(serve())


async def serve_gateway(gateway: Gateway, extra_addons: Iterable[object] = ()) -> None:
    """Serve `gateway` on a lean master until SIGINT/SIGTERM; raises MasterError for an option mitmproxy refuses."""
    from mitmproxy import exceptions
    from mitmproxy.options import Options

    # mitmproxy's own start-up (tools/main.py) sets the root logger to DEBUG and lets its termlog
    # addon filter by verbosity; do the same, and keep chatty libraries quiet.
    logging.getLogger().setLevel(logging.DEBUG)
    for name in ("asyncio", "hpack", "quic", "tornado"):
        logging.getLogger(name).setLevel(logging.WARNING)

    opts = Options()
    given = [item.split("=", 1)[0] for item in gateway.config.mitmproxy_options]
    master = lean_master(opts, given)
    master.addons.add(*gateway.addons, *extra_addons)
    try:
        opts.update(**gateway.mitmproxy_options())
        opts.set(*gateway.config.mitmproxy_options)
    except (exceptions.OptionsError, KeyError, ValueError, NotImplementedError) as e:
        raise MasterError(f"mitmproxy options: {e}") from None
    await serve_master(master)


async def serve_master(master: Master) -> None:
    """Run `master` until SIGINT/SIGTERM, quietly about the connections cancelled at the end."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, master.shutdown)
        except (NotImplementedError, RuntimeError):  # pragma: no cover (Windows)
            signal.signal(sig, lambda *_: loop.call_soon_threadsafe(master.shutdown))
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    await master.run()
    # Connections still open at shutdown are cancelled by the runner's teardown; mitmproxy's stream
    # callbacks then report each CancelledError as an "exception in callback". That is the normal end of a
    # connection, not an error: keep it out of the output.
    default_handler = loop.get_exception_handler()

    def _quiet_cancellations(loop: asyncio.AbstractEventLoop, context: dict) -> None:
        if isinstance(context.get("exception"), asyncio.CancelledError):
            return
        if default_handler is not None:
            default_handler(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(_quiet_cancellations)
