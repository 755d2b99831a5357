"""The console's HTTPS server: cheroot (CherryPy's WSGI server, maintained, pure Python, TLS built in),
never Werkzeug's development server.

cheroot serves the Flask app from a fixed pool of threads in this one process (a console needs no more: a
few teachers at a time, each request a file read or an scrypt), writes no access log (no client address in
any log), and takes its certificate from an `ssl.SSLContext` we can load a renewed certificate into while
it runs. TLS 1.2 at least.
"""

from __future__ import annotations

import datetime as dt
import logging
import ssl
import threading
from typing import Final

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter

from classgate.agent.console.app import create_app
from classgate.agent.console.certificate import (
    CHECK_SECONDS,
    CertificateError,
    ServerCertificate,
    certificate_names,
    ensure_certificate,
)
from classgate.agent.console.settings import ConsoleSettings
from classgate.agent.console.state import ConsoleState

log = logging.getLogger(__name__)

THREADS: Final = 8
DAY_LOOK_SECONDS: Final = 60.0
REQUEST_TIMEOUT: Final = 20  # seconds a client may take to send a request (a slow-loris holds no thread)


class _Server(wsgi.Server):
    """cheroot's server with its error log kept free of client addresses."""

    def error_log(self, msg: str = "", level: int = logging.INFO, traceback: bool = False) -> None:
        # cheroot's messages name the client ("Client ('10.1.2.3', 51234) attempted to speak plain HTTP..."):
        # a student's address must not reach the journal, and a failed handshake is no news worth a line.
        if traceback or level >= logging.ERROR:
            log.error("the console's server failed on a connection (the client is not logged)", exc_info=traceback)


class ConsoleServer:
    """Bound on creation (`OSError` if the address is taken); `serve()` blocks until `stop()`."""

    def __init__(self, settings: ConsoleSettings) -> None:
        self.settings = settings
        self._names = certificate_names(settings.listen.host, settings.names)
        self.certificate = ensure_certificate(settings.state_dir, self._names)
        self._adapter = BuiltinSSLAdapter(str(self.certificate.cert_file), str(self.certificate.key_file))
        self._adapter.context.minimum_version = ssl.TLSVersion.TLSv1_2
        app = create_app(settings)
        self._state: ConsoleState = app.extensions["classgate_console"]
        self._server = _Server((settings.listen.host, settings.listen.port), app,
                                   numthreads=THREADS, server_name="classgate-console", timeout=REQUEST_TIMEOUT)
        self._server.ssl_adapter = self._adapter
        self._stopping = threading.Event()
        self._server.prepare()  # binds now, so a taken port is an error before anything is printed

    @property
    def port(self) -> int:
        return int(self._server.bind_addr[1])

    def serve(self) -> None:
        renewer = threading.Thread(target=self._renew_loop, name="console-certificate", daemon=True)
        renewer.start()
        if self.settings.metrics is not None:
            threading.Thread(target=self._day_loop, name="console-today", daemon=True).start()
        try:
            self._server.serve()
        finally:
            self._stopping.set()

    def stop(self) -> None:
        self._stopping.set()
        self._server.stop()

    def _day_loop(self) -> None:
        """A look at the gateway's counters every minute, so that today's baseline is taken within a minute of
        local midnight (agent/console/today.py), not at the first admin's visit."""
        while not self._stopping.wait(DAY_LOOK_SECONDS):
            try:
                self._state.usage()
            except Exception:  # a look must never end the loop; the page shows the same problem
                log.exception("the console's look at the gateway's counters failed")

    def _renew_loop(self) -> None:
        while not self._stopping.wait(CHECK_SECONDS):
            self.renew()

    def renew(self, now: dt.datetime | None = None) -> ServerCertificate | None:
        """Issue the certificate again if it must be (at `now`: the time, unless a test moves it), and serve
        the new one to the next connections."""
        try:
            fresh = ensure_certificate(self.settings.state_dir, self._names, now=now)
        except CertificateError as exc:
            log.error("the console's certificate could not be renewed: %s", exc)
            return None
        if fresh.issued:
            self._adapter.context.load_cert_chain(str(fresh.cert_file), str(fresh.key_file))
            self.certificate = fresh
            log.info("the console's certificate was renewed, valid until %s", fresh.certificate.not_valid_after_utc)
        return fresh
