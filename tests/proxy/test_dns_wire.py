"""proxy/dns/wire.py: what a query may look like, what is answered for what is not one, and records read right."""

from __future__ import annotations

import struct

import pytest
from mitmproxy import dns as mdns
from mitmproxy.dns import ResourceRecord

from classgate.proxy.dns import wire
from tests.proxy.dnstest_support import (
    AAAA,
    CNAME,
    MX,
    OPT,
    SOA,
    TXT,
    A,
    name_bytes,
    opt_record,
    query_bytes,
    question,
    response_bytes,
    rr_bytes,
)

HEADER = struct.Struct("!HHHHHH")


def header(query_id: int = 0x1234, flags: int = 0x0100, qd: int = 1, an: int = 0, ns: int = 0, ar: int = 0) -> bytes:
    return HEADER.pack(query_id, flags, qd, an, ns, ar)


# A pointer to offset 12 (the first name after the header) that points at itself: a loop.
LOOP = b"\xc0\x0c"

QUERIES = [
    # (why, bytes, expected: name, qtype, edns payload, DO)
    ("a plain query", query_bytes("www.example.com"), ("www.example.com", A, None, False)),
    ("names are case-insensitive", query_bytes("WWW.Example.COM", AAAA), ("www.example.com", AAAA, None, False)),
    ("EDNS with DO", query_bytes("a.test", edns=(4096, True)), ("a.test", A, 4096, True)),
    ("EDNS without DO", query_bytes("a.test", edns=(1232, False)), ("a.test", A, 1232, False)),
    ("the root", query_bytes(".", 2), ("", 2, None, False)),
    ("underscore labels (SRV, DMARC)", query_bytes("_dmarc.example.com", TXT), ("_dmarc.example.com", TXT, None, False)),
]


@pytest.mark.parametrize(("why", "data", "expected"), QUERIES, ids=[q[0] for q in QUERIES])
def test_readable_queries(why: str, data: bytes, expected: tuple) -> None:
    query = wire.parse_query(data)
    name, qtype, payload, do = expected
    assert (query.name, query.qtype, query.edns.payload if query.edns else None, query.do) == (name, qtype, payload, do)
    assert query.question == data[12:12 + len(query.question)]  # echoed exactly as sent


MALFORMED = [
    # (why, bytes, the id FORMERR answers with, or None: no answer possible)
    ("one byte", b"\x12", None),
    ("a cut header", b"\x12\x34\x01\x00\x00", 0x1234),
    ("a cut question", header() + b"\x07exam", 0x1234),
    ("no type and class", header() + name_bytes("a.test"), 0x1234),
    ("oversized", query_bytes("a.test") + b"\0" * 1300, 0x1234),
    ("two questions", header(qd=2) + question("a.test") + question("b.test"), 0x1234),
    ("no question", header(qd=0), 0x1234),
    ("a compression pointer in the question", header() + LOOP + struct.pack("!HH", A, 1), 0x1234),
    ("a compression loop in an additional record",
     header(ar=1) + question("a.test") + b"\xc0\x18" + struct.pack("!HHIH", OPT, 1232, 0, 0), 0x1234),
    ("a label holding a dot", header() + b"\x03a.b\x04test\x00" + struct.pack("!HH", A, 1), 0x1234),
    ("a label that is not ASCII", header() + b"\x03\xc3\xa9x\x04test\x00" + struct.pack("!HH", A, 1), 0x1234),
    ("a space in a label", header() + b"\x03a b\x04test\x00" + struct.pack("!HH", A, 1), 0x1234),
    ("a name over 255 bytes", header() + b"".join(b"\x3f" + b"a" * 63 for _ in range(4)) + b"\0"
     + struct.pack("!HH", A, 1), 0x1234),
    ("bytes after the question", query_bytes("a.test") + b"junk", 0x1234),
    ("an answer record in a query", header(an=1) + question("a.test") + rr_bytes(b"\0", A, b"\1\2\3\4"), 0x1234),
    ("two OPT records", header(ar=2) + question("a.test") + opt_record() + opt_record(), 0x1234),
    ("an OPT record not at the root",
     header(ar=1) + question("a.test") + name_bytes("x") + struct.pack("!HHIH", OPT, 1232, 0, 0), 0x1234),
    ("an additional record cut short", header(ar=1) + question("a.test") + b"\0" + struct.pack("!HHIH", OPT, 1232, 0, 9),
     0x1234),
]


@pytest.mark.parametrize(("why", "data", "query_id"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_queries_are_formerr(why: str, data: bytes, query_id: int | None) -> None:
    with pytest.raises(wire.Malformed) as caught:
        wire.parse_query(data)
    assert caught.value.query_id == query_id


UNSUPPORTED = [
    ("class CHAOS (version.bind)", query_bytes("version.bind", TXT, qclass=3), 5),
    ("class ANY", query_bytes("a.test", qclass=255), 5),
    ("a zone transfer", query_bytes("test", 252), 5),
    ("opcode STATUS", query_bytes("a.test", flags=0x1000), 4),
    ("opcode UPDATE", query_bytes("a.test", flags=0x2800), 4),
]


@pytest.mark.parametrize(("why", "data", "rcode"), UNSUPPORTED, ids=[u[0] for u in UNSUPPORTED])
def test_unsupported_queries(why: str, data: bytes, rcode: int) -> None:
    with pytest.raises(wire.Unsupported) as caught:
        wire.parse_query(data)
    assert caught.value.rcode == rcode and caught.value.query_id == 0x1234


def test_a_response_is_not_a_query() -> None:
    with pytest.raises(wire.NotAQuery):
        wire.parse_query(query_bytes("a.test", flags=0x8180))


@pytest.mark.parametrize(
    ("edns", "limit"),
    [(None, 512), ((512, False), 512), ((100, False), 512), ((1232, False), 1232), ((4096, True), 1232)],
)
def test_udp_limit_follows_edns_but_never_exceeds_1232(edns: tuple[int, bool] | None, limit: int) -> None:
    assert wire.parse_query(query_bytes("a.test", edns=edns)).udp_limit == limit


def many_a(count: int) -> wire.Answer:
    return wire.Answer(0, [ResourceRecord("big.test", A, 1, 300, bytes([10, 0, i // 256, i % 256]))
                           for i in range(count)])


@pytest.mark.parametrize(
    ("records", "edns", "truncated"),
    [(5, None, False), (30, None, True), (30, (1232, False), False), (100, (1232, False), True)],
)
def test_answers_over_the_limit_are_truncated(records: int, edns: tuple[int, bool] | None, truncated: bool) -> None:
    query = wire.parse_query(query_bytes("Big.Test", edns=edns))
    packed = wire.pack_reply(query, many_a(records), query.udp_limit)
    _, flags, qd, an, _, ar = HEADER.unpack_from(packed)
    assert bool(flags & wire.TC) == truncated and len(packed) <= query.udp_limit
    assert (an == 0) == truncated and qd == 1 and ar == (1 if edns else 0)
    assert packed[12:12 + len(query.question)] == query.question  # "Big.Test" as the client wrote it
    assert len(wire.pack_reply(query, many_a(records), wire.TCP_MAX)) > (0 if not truncated else query.udp_limit)


@pytest.mark.parametrize(
    ("client_edns", "authenticated", "ad"),
    [((1232, True), True, True), ((1232, False), True, False), (None, True, False), ((1232, True), False, False)],
)
def test_ad_bit_only_for_clients_that_asked_for_dnssec(client_edns: tuple[int, bool] | None, authenticated: bool,
                                                       ad: bool) -> None:
    query = wire.parse_query(query_bytes("a.test", edns=client_edns))
    _, flags, *_ = HEADER.unpack_from(wire.pack_reply(query, wire.Answer(0, authenticated=authenticated), 512))
    assert bool(flags & wire.AD) == ad and flags & wire.QR and flags & wire.RA and flags & wire.RD


# --- upstream answers ---------------------------------------------------------------------------------------

Q = question("a.test", A)
AT_Q = b"\xc0\x0c"  # a pointer to the question's name


def parsed(*answers: bytes, authorities: tuple[bytes, ...] = (), query_id: int = 7) -> wire.Answer:
    return wire.parse_response(response_bytes(query_id, Q, answers, authorities), query_id, Q)


def test_compressed_names_in_rdata_are_expanded_by_layout() -> None:
    answer = parsed(rr_bytes(AT_Q, CNAME, b"\x03cdn" + AT_Q), rr_bytes(AT_Q, MX, b"\x00\x0a\x04mail" + AT_Q))
    assert [(rr.name, rr.type, rr.data) for rr in answer.answers] == [
        ("a.test", CNAME, name_bytes("cdn.a.test")),
        ("a.test", MX, b"\x00\x0a" + name_bytes("mail.a.test")),
    ]


def test_numbers_and_text_that_look_like_pointers_are_left_alone() -> None:
    """mitmproxy's byte-by-byte guess takes an SOA serial of 0xC00C... or a UTF-8 TXT byte for a pointer to
    the question's name and rewrites the record; reading by layout keeps them."""
    numbers = struct.pack("!IIIII", 0xC00C0001, 3600, 600, 86400, 60)
    soa = rr_bytes(AT_Q, SOA, AT_Q + AT_Q + numbers)
    txt = rr_bytes(AT_Q, TXT, b"\x03\xc0\x0cX")
    answer = parsed(txt, authorities=(soa,))
    assert answer.authorities[0].data == name_bytes("a.test") * 2 + numbers
    assert answer.answers[0].data == b"\x03\xc0\x0cX"
    message = getattr(mdns, "DNSMessage", None) or mdns.Message  # mitmproxy 12 renamed it
    theirs = message.unpack(response_bytes(7, Q, [txt], [soa]))
    assert theirs.authorities[0].data != answer.authorities[0].data  # what this module exists to avoid


@pytest.mark.parametrize(
    ("why", "data", "error"),
    [
        ("another id", response_bytes(8, Q, [rr_bytes(AT_Q, A, b"\1\2\3\4")]), wire.WireError),
        ("another question", response_bytes(7, question("b.test"), []), wire.WireError),
        ("not a response", response_bytes(7, Q, [], flags=0x0100), wire.WireError),
        ("truncated", response_bytes(7, Q, [], flags=0x8380), wire.Truncated),
        ("a loop in a record name", response_bytes(7, Q, [rr_bytes(b"\xc0\x18", A, b"\1\2\3\4")]), wire.WireError),
        ("record data cut short", response_bytes(7, Q, [rr_bytes(AT_Q, A, b"\1\2\3\4")])[:-2], wire.WireError),
        ("a CNAME whose data is not one name", response_bytes(7, Q, [rr_bytes(AT_Q, CNAME, AT_Q + b"x")]),
         wire.WireError),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_unusable_upstream_answers(why: str, data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        wire.parse_response(data, 7, Q)


def test_upstream_opt_is_dropped_and_case_of_question_may_differ() -> None:
    data = response_bytes(7, question("A.TEST"), [rr_bytes(AT_Q, A, b"\1\2\3\4")])
    data = data[:10] + b"\x00\x01" + data[12:] + opt_record(4096, True)  # ARCOUNT 1, the upstream's OPT
    answer = wire.parse_response(data, 7, Q)
    assert [rr.type for rr in answer.answers + answer.additionals] == [A]


def test_gateway_query_carries_edns_and_the_clients_dnssec_bits() -> None:
    packed = wire.pack_query(0x4242, Q, do=True, cd=True)
    query_id, flags, qd, an, ns, ar = HEADER.unpack_from(packed)
    assert (query_id, flags & wire.RD, flags & wire.CD, qd, an, ns, ar) == (0x4242, wire.RD, wire.CD, 1, 0, 0, 1)
    assert packed.endswith(b"\0" + struct.pack("!HHIH", OPT, wire.UDP_PAYLOAD, wire.DO, 0))
