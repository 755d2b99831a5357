"""Keep client addresses out of the default-level log.

mitmproxy tags every connection log record with the client's address (`record.client`) and logs
each connect and disconnect at INFO: on a school network that is a per-student browsing trail. This
addon demotes the connection chatter to DEBUG and, at INFO and above, drops the address from the
record (and destination names from TLS failure messages), so `classgate run` without --verbose
prints neither a client IP nor where it went.
"""

from __future__ import annotations

import logging
import re

SERVER_LOGGER = "mitmproxy.proxy.server"
# Messages that are about one client's connection and nothing else.
_CHATTER = ("client connect", "client disconnect", "client kill connection", "server connect",
            "server disconnect", "Closing connection due to inactivity")
# The handshake failure of a connection the TLS gate refused on purpose (proxy/addons/tls_gate.py
# hands mitmproxy a TLS context without a certificate): the gate logs the refusal itself.
_REFUSAL = "no shared cipher"
# mitmproxy's TLS failure messages name the destination ("...certificate for www.example.com (...)").
_DESTINATION = re.compile(r"\b(for|to) (?!<)[^\s()]+")
# mitmproxy quotes what a client or server sent, as a bytes literal ("Bad HTTP request line: b'GET http://..."):
# a destination, a path, a student's search. Everything from the literal on is dropped.
_BYTES = re.compile(r"""\bb(['"]).*""", re.DOTALL)
# mitmproxy quotes a ClientHello it cannot parse in hex ("Cannot parse ClientHello: 160301..."): the SNI in it is
# a destination. Any long hex run goes (16 bytes and more: no address or port is that long).
_HEX = re.compile(r"\b[0-9a-fA-F]{32,}\b")
# "Streaming request to www.example.com." / "Streaming response from ...".
_STREAMING = re.compile(r"^(Streaming (?:request to|response from)) .*")
# Some mitmproxy messages put the peer's address in the text ("10.1.2.3:5555: Bad HTTP request").
_ADDRESS = re.compile(r"\[?\b(?:\d{1,3}\.){3}\d{1,3}\b\]?(?::\d+)?|\[[0-9a-fA-F:.]*:[0-9a-fA-F:.]*\](?::\d+)?")


class ClientAddressFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO and isinstance(record.msg, str) and record.msg.startswith(_CHATTER) or record.levelno > logging.INFO and _REFUSAL in str(record.msg):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        if record.levelno > logging.DEBUG:
            if getattr(record, "client", None) is not None:
                record.client = None
            message = record.getMessage()
            redacted = _ADDRESS.sub("<address>", message) if any(c.isdigit() for c in message) else message
            if "TLS" in redacted:
                redacted = _DESTINATION.sub(r"\1 <host>", redacted)
            if "b'" in redacted or 'b"' in redacted:
                redacted = _BYTES.sub("<what was sent>", redacted)
            if len(redacted) > 32:
                redacted = _HEX.sub("<what was sent>", redacted)
            if redacted.startswith("Streaming "):
                redacted = _STREAMING.sub(r"\1 <host>.", redacted)
            if redacted != message:
                record.msg, record.args = redacted, ()
        return True


class PrivacyLog:
    def __init__(self) -> None:
        self.filter = ClientAddressFilter()

    def load(self, loader: object) -> None:
        # At load, before the proxy server starts and logs its first connection.
        logging.getLogger(SERVER_LOGGER).addFilter(self.filter)

    def done(self) -> None:
        logging.getLogger(SERVER_LOGGER).removeFilter(self.filter)
