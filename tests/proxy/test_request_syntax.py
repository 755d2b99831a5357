"""Malformed requests are refused before anything decides them: the grammar as a table of cases."""

from __future__ import annotations

import pytest
from mitmproxy.test import taddons, tflow

from classgate.proxy.addons.request_syntax_gate import RequestSyntaxGate
from classgate.proxy.addons.usage_metrics import UsageMetrics
from classgate.proxy.context import FilterContext
from classgate.proxy.failsafe import FailSafe
from classgate.proxy.metric_labels import gateway_metrics
from classgate.proxy.policy_holder import PolicyHolder
from classgate.proxy.request_syntax import malformed_part

OK_FIELDS = [(b"Host", b"example.com"), (b"Accept", b"*/*"), (b"X-Obs", "caf\xe9".encode("latin-1"))]


@pytest.mark.parametrize(
    ("method", "target", "authority", "hosts", "fields", "expected"),
    [
        (b"GET", b"/", b"", [b"example.com"], OK_FIELDS, None),
        (b"GET", b"http://example.com/a?b=c", b"example.com", [b"example.com:80"], OK_FIELDS, None),
        (b"GET", b"/", b"[::1]:8080", [b"[::1]:8080"], [], None),
        (b"PURGE", b"/", b"", [b""], [], None),  # any token is a method; an empty Host is allowed
        (b"CONNECT", b"example.com:443", b"example.com:443", [], [], None),
        # HTTP/2 -> HTTP/1.1 smuggling: the filter would decide /ok, the origin would serve /secret.
        (b"GET /secret HTTP/1.1\r\nX-A:", b"/ok", b"", [b"example.com"], [], "method"),
        (b"GET", b"/ok HTTP/1.1\r\nHost: evil", b"", [b"example.com"], [], "target"),
        (b"GET", b"/a b", b"", [b"example.com"], [], "target"),
        (b"GET", b"/\x00", b"", [b"example.com"], [], "target"),
        (b"GET", "/caf\xe9".encode(), b"", [b"example.com"], [], "target"),  # raw non-ASCII, never encoded
        (b"GET", b"/", b"example.com\r\nX: y", [], [], "authority"),
        # A Host header that is not an authority moves the path out of the filter's view.
        (b"GET", b"/", b"", [b"blocked.example?.allowed.example"], [], "authority"),
        (b"GET", b"/", b"", [b"blocked.example#x"], [], "authority"),
        (b"GET", b"/", b"", [b"blocked.example\\x"], [], "authority"),
        (b"GET", b"/", b"", [b"blocked.example /x"], [], "authority"),
        (b"GET", b"/", b"", [b"user@blocked.example"], [], "authority"),
        (b"GET", b"/", b"", [b"\xff\xfe.example"], [], "authority"),  # invalid UTF-8 in Host
        (b"GET", b"/", b"", [b"ok.example", b"blocked.example:99999x"], [], "authority"),
        (b"GET", b"/", b"", [b"ok.example"], [(b"X-Bad Name", b"v")], "header_name"),
        (b"GET", b"/", b"", [b"ok.example"], [(b"X-A", b"v\r\nGET /smuggled HTTP/1.1")], "header_value"),
        (b"GET", b"/", b"", [b"ok.example"], [(b"X-A", b"v\nw")], "header_value"),
        (b"GET", b"/", b"", [b"ok.example"], [(b"X-A", b"v\x00")], "header_value"),
    ],
)
def test_malformed_part(method, target, authority, hosts, fields, expected):
    assert malformed_part(method, target, authority, hosts, fields) == expected


def test_the_gate_answers_400_and_counts_the_part():
    metrics = gateway_metrics(process_metrics=False)
    gate = RequestSyntaxGate(FilterContext(PolicyHolder(), FailSafe(), verdicts=UsageMetrics(metrics)))
    with taddons.context(gate):
        bad, good = tflow.tflow(), tflow.tflow()
        bad.request.data.method = b"GET /secret HTTP/1.1\r\nX:"
        gate.requestheaders(bad)
        gate.requestheaders(good)
    assert bad.response is not None and bad.response.status_code == 400
    assert good.response is None
    assert metrics.registry.get_sample_value("classgate_malformed_requests_total", {"part": "method"}) == 1
