"""proxy/dns/ech_strip.py: no `ech` parameter leaves the gateway, and nothing else about the records changes."""

from __future__ import annotations

import base64
import struct

import pytest
from mitmproxy.dns import ResourceRecord
from mitmproxy.net.dns import https_records

from classgate.proxy.dns.ech_strip import Stripped, strip_ech
from classgate.proxy.dns.wire import Answer
from tests.proxy.dnstest_support import CLOUDFLARE_ECH, HTTPS, RRSIG, SVCB, A, https_rdata

ECH = base64.b64decode(CLOUDFLARE_ECH)
ALPN = b"\x02h2\x02h3"
V4HINT = bytes([104, 16, 0, 1])
MANDATORY_ECH = struct.pack("!H", 5)


def rr(rtype: int, data: bytes, name: str = "site.test") -> ResourceRecord:
    return ResourceRecord(name, rtype, 1, 300, data)


def rrsig(covered: int, name: str = "site.test") -> ResourceRecord:
    return rr(RRSIG, struct.pack("!HBBI", covered, 13, 2, 300) + b"\0" * 20, name)


def params(record: ResourceRecord) -> dict[int, bytes]:
    return https_records.unpack(record.data).params


CASES = [
    # (why, records in, the params of each HTTPS/SVCB record kept (None: dropped), other types kept, counts)
    ("ech removed, alpn and hints kept", [rr(HTTPS, https_rdata(1, "", {1: ALPN, 4: V4HINT, 5: ECH}))],
     [{1: ALPN, 4: V4HINT}], [], Stripped(https=1)),
    ("SVCB too", [rr(SVCB, https_rdata(1, "svc.test", {5: ECH}))], [{}], [], Stripped(svcb=1)),
    ("a record without ech is left alone", [rr(HTTPS, https_rdata(1, "", {1: ALPN}))], [{1: ALPN}], [],
     Stripped()),
    ("ech listed as mandatory: the record goes", [rr(HTTPS, https_rdata(1, "", {0: MANDATORY_ECH, 1: ALPN, 5: ECH}))],
     [None], [], Stripped(https=1)),
    ("unreadable parameters: the record goes", [rr(HTTPS, b"\x00\x01\x00\x00\x05\x00\xff")], [None], [],
     Stripped(https=1)),
    ("the RRSIG over the changed RRset goes, others stay",
     [rr(HTTPS, https_rdata(1, "", {5: ECH})), rrsig(HTTPS), rrsig(A), rr(A, V4HINT)], [{}], [RRSIG, A],
     Stripped(https=1)),
    ("alias mode with an ech (ignored by clients anyway)", [rr(HTTPS, https_rdata(0, "cdn.test", {5: ECH}))], [{}],
     [], Stripped(https=1)),
]


@pytest.mark.parametrize(("why", "records", "kept", "others", "counts"), CASES, ids=[c[0] for c in CASES])
def test_strip(why: str, records: list[ResourceRecord], kept: list[dict | None], others: list[int],
               counts: Stripped) -> None:
    answer = Answer(0, list(records), authenticated=True)
    assert strip_ech(answer) == counts
    service = [r for r in answer.answers if r.type in (HTTPS, SVCB)]
    assert [params(r) for r in service] == [k for k in kept if k is not None]
    assert [r.type for r in answer.answers if r.type not in (HTTPS, SVCB)] == others
    assert answer.authenticated == (not counts)  # AD cleared whenever something changed


def test_every_section_is_stripped() -> None:
    record = rr(HTTPS, https_rdata(1, "", {5: ECH}))
    answer = Answer(0, [record], [record], [record])
    assert strip_ech(answer) == Stripped(https=3)
    assert all(5 not in params(r) for r in answer.answers + answer.authorities + answer.additionals)


def test_priority_target_and_ttl_survive() -> None:
    answer = Answer(0, [ResourceRecord("Site.Test", HTTPS, 1, 123, https_rdata(2, "pool.test", {1: ALPN, 5: ECH}))])
    strip_ech(answer)
    record = answer.answers[0]
    unpacked = https_records.unpack(record.data)
    assert (record.name, record.ttl, unpacked.priority, unpacked.target_name) == ("Site.Test", 123, 2, "pool.test")
