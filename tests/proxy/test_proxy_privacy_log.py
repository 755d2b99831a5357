"""Client addresses and destinations stay out of INFO-level log records (proxy/addons/privacy_log.py)."""

from __future__ import annotations

import logging

import pytest

from classgate.proxy.addons.privacy_log import ClientAddressFilter


def record(level: int, msg: str, client=("10.10.3.7", 51234)) -> logging.LogRecord:
    r = logging.LogRecord("mitmproxy.proxy.server", level, __file__, 1, msg, (), None)
    r.client = client
    return r


UNTRUSTED = "Client TLS handshake failed. The client does not trust the proxy's certificate for {} (unknown ca)"
REFUSED = ("Client TLS handshake failed. The client may not trust the proxy's certificate for blocked.test "
           "(OpenSSL Error([('SSL routines', '', 'no shared cipher')]))")


@pytest.mark.parametrize(
    ("level", "msg", "out_level", "out_msg", "client_kept"),
    [
        (logging.INFO, "client connect", logging.DEBUG, "client connect", True),
        (logging.INFO, "server disconnect example.com:443 (10.0.0.9:443)", logging.DEBUG,
         "server disconnect example.com:443 (10.0.0.9:443)", True),
        (logging.INFO, "10.10.3.7:51234: Bad HTTP request line: b'GARBAGE'", logging.INFO,
         "<address>: Bad HTTP request line: <what was sent>", False),
        # What a client sent names where it went: never at INFO.
        (logging.INFO, "10.10.3.7:51234: Bad HTTP request line: b'GET http://casino.example/?q=minh HTTP/1.1 x'",
         logging.INFO, "<address>: Bad HTTP request line: <what was sent>", False),
        (logging.INFO, 'Client closed connection before completing request headers: b"GET /secret HTTP/1.1"',
         logging.INFO, "Client closed connection before completing request headers: <what was sent>", False),
        (logging.INFO, "Streaming request to casino.example.", logging.INFO, "Streaming request to <host>.",
         False),
        # mitmproxy quotes a ClientHello it cannot parse in hex, SNI included.
        (logging.WARNING, "Client TLS handshake failed. Cannot parse ClientHello: 16030100" + b"casino.example".hex(),
         logging.WARNING, "Client TLS handshake failed. Cannot parse ClientHello: <what was sent>", False),
        (logging.INFO, "Streaming response from casino.example.", logging.INFO,
         "Streaming response from <host>.", False),
        (logging.WARNING, UNTRUSTED.format("www.example.vn"), logging.WARNING, UNTRUSTED.format("<host>"), False),
        (logging.WARNING, REFUSED, logging.DEBUG, None, True),
        (logging.DEBUG, "client connect", logging.DEBUG, "client connect", True),
        (logging.INFO, "HTTP(S) proxy listening at *:8080.", logging.INFO, "HTTP(S) proxy listening at *:8080.",
         False),
        (logging.ERROR, "to [fd00:30::5]:443 failed", logging.ERROR, "to <address> failed", False),
    ],
)
def test_filter(level, msg, out_level, out_msg, client_kept):
    r = record(level, msg)
    assert ClientAddressFilter().filter(r) is True
    assert r.levelno == out_level
    if out_msg is not None:
        assert r.getMessage() == out_msg
    assert (r.client is not None) == client_kept
