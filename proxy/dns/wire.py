"""DNS messages as the gateway's resolver reads and writes them, on mitmproxy's codec.

From mitmproxy (`mitmproxy.dns`, `mitmproxy.net.dns`) come the record type (`ResourceRecord`), the loop-safe
decompression of names (`domain_names.unpack_from_with_compression`, which refuses a pointer loop) and the
packing of names. Two parts are ours, because mitmproxy's `Message.unpack` gets them wrong for a resolver:
- the question is kept as the client's exact bytes and echoed back (0x20 case randomisation, upper-case
  `XN--` labels survive), and only names a policy can decide are accepted: printable ASCII labels, no dot
  inside a label (which would read as two labels), no compression pointer (nothing precedes it to point at);
- names inside RDATA are decompressed by the record type's layout (MX: 2 bytes then a name; SOA: two names
  then five numbers...), never by mitmproxy's byte-by-byte guess, which can take an SOA serial or a UTF-8
  TXT byte for a pointer and rewrite it. Types whose RDATA may not be compressed (RFC 3597 section 4) are
  copied as they are.

Messages are written without compression: the cache keeps parsed records, and the TC bit handles the rare
answer that no longer fits (the client asks again over TCP).
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from mitmproxy.dns import ResourceRecord
from mitmproxy.net.dns import domain_names, response_codes, types

HEADER: Final = struct.Struct("!HHHHHH")
_RR: Final = struct.Struct("!HHIH")
_TYPE_CLASS: Final = struct.Struct("!HH")

QR: Final = 0x8000
OPCODE: Final = 0x7800
AA: Final = 0x0400
TC: Final = 0x0200
RD: Final = 0x0100
RA: Final = 0x0080
AD: Final = 0x0020
CD: Final = 0x0010
DO: Final = 0x8000  # in an OPT record's TTL field

CLASS_IN: Final = 1
# The largest answer the gateway sends over UDP, whatever a client offers: the DNS flag day 2020 size, which
# avoids IP fragmentation on every common path. Without EDNS, 512 (RFC 1035).
UDP_PAYLOAD: Final = 1232
CLASSIC_UDP: Final = 512
TCP_MAX: Final = 65535
# A query is a header, one question and an OPT record: a few hundred bytes even with EDNS padding. Anything
# larger is not a query we answer.
MAX_QUERY_BYTES: Final = 1232
ZONE_TRANSFERS: Final = frozenset({types.AXFR, types.IXFR, types.MAILA, types.MAILB})
# The bytes a question's label may hold: printable ASCII but the dot (bytes.translate deletes them).
_LABEL_BYTES: Final = bytes(b for b in range(0x21, 0x7F) if b != 0x2E)

# RDATA layouts with names that may be compressed (RFC 1035, RFC 3597 section 4, and the types servers are
# known to compress anyway): the fixed bytes before each name, and the fixed bytes after the last one.
_NAME_LAYOUTS: Final[dict[int, tuple[tuple[int, ...], int]]] = {
    types.NS: ((0,), 0), types.MD: ((0,), 0), types.MF: ((0,), 0), types.CNAME: ((0,), 0),
    types.MB: ((0,), 0), types.MG: ((0,), 0), types.MR: ((0,), 0), types.PTR: ((0,), 0), types.DNAME: ((0,), 0),
    types.SOA: ((0, 0), 20), types.MINFO: ((0, 0), 0), types.RP: ((0, 0), 0),
    types.MX: ((2,), 0), types.AFSDB: ((2,), 0), types.RT: ((2,), 0), types.KX: ((2,), 0),
    types.PX: ((2, 0), 0), types.SRV: ((6,), 0),
}


class WireError(Exception):
    """A message that cannot be used (see the subclasses for what the gateway answers)."""


class Malformed(WireError):
    """Answered FORMERR (with the query's id, when there is one)."""

    def __init__(self, why: str, query_id: int | None = None, question: bytes | None = None) -> None:
        super().__init__(why)
        self.query_id = query_id
        self.question = question


class Unsupported(WireError):
    """A readable query the gateway does not serve (another opcode or class, a zone transfer)."""

    def __init__(self, why: str, query_id: int, flags: int, question: bytes | None, rcode: int) -> None:
        super().__init__(why)
        self.query_id, self.flags, self.question, self.rcode = query_id, flags, question, rcode


class NotAQuery(WireError):
    """A response (QR set) sent to the listener: dropped, never answered, so two resolvers cannot loop."""


class Truncated(WireError):
    """An upstream answer with the TC bit: ask again over TCP."""


@dataclass(frozen=True, slots=True)
class Edns:
    payload: int  # the UDP size the client accepts
    do: bool  # DNSSEC OK: the client wants signatures


@dataclass(frozen=True, slots=True)
class Query:
    id: int
    flags: int
    name: str  # lower case, no trailing dot; "" is the root
    qtype: int
    qclass: int
    question: bytes  # the question section exactly as the client sent it
    edns: Edns | None = None

    @property
    def do(self) -> bool:
        return self.edns is not None and self.edns.do

    @property
    def udp_limit(self) -> int:
        """The largest UDP answer this client accepts (and the gateway sends)."""
        if self.edns is None:
            return CLASSIC_UDP
        return min(max(self.edns.payload, CLASSIC_UDP), UDP_PAYLOAD)


@dataclass(slots=True)
class Answer:
    """What the resolver answers, before it is fitted to one client (id, question, EDNS, size)."""

    rcode: int
    answers: list[ResourceRecord] = field(default_factory=list)
    authorities: list[ResourceRecord] = field(default_factory=list)
    additionals: list[ResourceRecord] = field(default_factory=list)  # never an OPT: each side writes its own
    authenticated: bool = False  # the upstream's AD bit


def _question(data: bytes, offset: int, query_id: int) -> tuple[str, int]:
    """The question's name (lower case) and the offset after it; raises Malformed."""
    labels: list[str] = []
    wire_length = 0
    while True:
        if offset >= len(data):
            raise Malformed("the question is cut short", query_id)
        size = data[offset]
        offset += 1
        wire_length += 1 + size
        if size == 0:
            break
        if size & 0xC0:
            raise Malformed("a compression pointer (or a reserved label type) in the question", query_id)
        label = data[offset:offset + size]
        if len(label) < size:
            raise Malformed("the question is cut short", query_id)
        if label.translate(None, _LABEL_BYTES):
            raise Malformed("a label that is not printable ASCII, or holds a dot", query_id)
        labels.append(label.decode("ascii").lower())
        offset += size
    if wire_length > 255:
        raise Malformed("a name longer than 255 bytes", query_id)
    return ".".join(labels), offset


def parse_query(data: bytes) -> Query:
    """A client's query; raises Malformed, Unsupported or NotAQuery."""
    query_id = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
    if len(data) > MAX_QUERY_BYTES:
        raise Malformed(f"{len(data)} bytes is no query (at most {MAX_QUERY_BYTES})", query_id)
    if len(data) < HEADER.size:
        raise Malformed("shorter than a DNS header", query_id)
    qid, flags, qdcount, ancount, nscount, arcount = HEADER.unpack_from(data)
    if flags & QR:
        raise NotAQuery("a response, not a query")
    if qdcount != 1:
        raise Malformed(f"{qdcount} questions (a query has one)", qid)
    name, end = _question(data, HEADER.size, qid)
    if end + _TYPE_CLASS.size > len(data):
        raise Malformed("the question is cut short", qid)
    qtype, qclass = _TYPE_CLASS.unpack_from(data, end)
    end += _TYPE_CLASS.size
    question = data[HEADER.size:end]
    if flags & OPCODE:
        raise Unsupported(f"opcode {(flags & OPCODE) >> 11}", qid, flags, question, response_codes.NOTIMP)
    if ancount or nscount:
        raise Malformed("a query with answer or authority records", qid, question)
    edns = None
    offset = end
    cache = domain_names.cache()
    for _ in range(arcount):
        try:
            rname, used = domain_names.unpack_from_with_compression(data, offset, cache)
            offset += used
            rtype, rclass, ttl, length = _RR.unpack_from(data, offset)
        except (struct.error, UnicodeError, RecursionError) as e:
            raise Malformed(f"an additional record that cannot be read: {e}", qid, question) from None
        offset += _RR.size + length
        if offset > len(data):
            raise Malformed("an additional record is cut short", qid, question)
        if rtype == types.OPT:
            if edns is not None or rname:
                raise Malformed("more than one OPT record, or one not at the root", qid, question)
            edns = Edns(payload=rclass, do=bool(ttl & DO))
    if offset != len(data):
        raise Malformed(f"{len(data) - offset} bytes after the last record", qid, question)
    if qclass != CLASS_IN:
        raise Unsupported(f"class {qclass}", qid, flags, question, response_codes.REFUSED)
    if qtype in ZONE_TRANSFERS:
        raise Unsupported(f"type {qtype}", qid, flags, question, response_codes.REFUSED)
    return Query(qid, flags, name, qtype, qclass, question, edns)


@functools.lru_cache(maxsize=4096)
def _packed_name(name: str) -> bytes:
    return domain_names.pack(name)  # IDNA per label: worth remembering for the names a school asks again


def _pack_records(out: bytearray, records: Iterable[ResourceRecord]) -> None:
    for rr in records:
        out += _packed_name(rr.name)
        out += _RR.pack(rr.type, rr.class_, max(0, min(rr.ttl, 0x7FFFFFFF)), len(rr.data))
        out += rr.data


def _opt(do: bool) -> ResourceRecord:
    return ResourceRecord("", types.OPT, UDP_PAYLOAD, DO if do else 0, b"")


def pack_reply(query: Query, answer: Answer, limit: int) -> bytes:
    """The answer to `query` as the client receives it; over `limit` bytes: empty, with TC set."""
    flags = QR | RA | (query.flags & (RD | CD)) | (answer.rcode & 0xF)
    if answer.authenticated and (query.do or query.flags & AD):
        flags |= AD
    opt = [_opt(query.do)] if query.edns is not None else []
    counts = (len(answer.answers), len(answer.authorities), len(answer.additionals) + len(opt))
    out = bytearray(HEADER.pack(query.id, flags, 1, *counts))
    out += query.question
    _pack_records(out, answer.answers)
    _pack_records(out, answer.authorities)
    _pack_records(out, answer.additionals)
    _pack_records(out, opt)
    if len(out) <= limit:
        return bytes(out)
    out = bytearray(HEADER.pack(query.id, (flags | TC) & ~AD, 1, 0, 0, len(opt)))
    out += query.question
    _pack_records(out, opt)
    return bytes(out)


def pack_error(query_id: int, flags: int, question: bytes | None, rcode: int) -> bytes:
    """An error answer (FORMERR, NOTIMP, REFUSED, SERVFAIL) for a query that may not have been readable."""
    out = bytearray(HEADER.pack(query_id, QR | RA | (flags & (RD | CD)) | (rcode & 0xF), 1 if question else 0,
                                0, 0, 0))
    if question:
        out += question
    return bytes(out)


def pack_query(query_id: int, question: bytes, *, do: bool, cd: bool) -> bytes:
    """The gateway's own query to an upstream: recursion desired, EDNS with the client's DO and CD bits."""
    out = bytearray(HEADER.pack(query_id, RD | (CD if cd else 0), 1, 0, 0, 1))
    out += question
    _pack_records(out, [_opt(do)])
    return bytes(out)


def _rdata(data: bytes, offset: int, end: int, rtype: int, cache: domain_names.Cache) -> bytes:
    layout = _NAME_LAYOUTS.get(rtype)
    if layout is None:
        return data[offset:end]
    fixed_before, fixed_after = layout
    out = bytearray()
    for fixed in fixed_before:
        out += data[offset:offset + fixed]
        offset += fixed
        name, used = domain_names.unpack_from_with_compression(data, offset, cache)
        offset += used
        out += domain_names.pack(name)
    out += data[offset:offset + fixed_after]
    offset += fixed_after
    if offset != end:
        raise struct.error("record data does not end where its length says")
    return bytes(out)


def parse_response(data: bytes, query_id: int, question: bytes) -> Answer:
    """An upstream's answer to the query with `query_id` and `question`; raises WireError (Truncated: ask TCP)."""
    if len(data) < HEADER.size:
        raise WireError("shorter than a DNS header")
    rid, flags, qdcount, ancount, nscount, arcount = HEADER.unpack_from(data)
    if rid != query_id or not flags & QR or qdcount != 1:
        raise WireError("not the answer to our query")
    end = HEADER.size + len(question)
    if data[HEADER.size:end].lower() != question.lower():
        raise WireError("an answer to another question")
    if flags & TC:
        raise Truncated("truncated")
    answer = Answer(rcode=flags & 0xF, authenticated=bool(flags & AD))
    offset = end
    cache = domain_names.cache()
    try:
        for section, count in ((answer.answers, ancount), (answer.authorities, nscount),
                               (answer.additionals, arcount)):
            for _ in range(count):
                name, used = domain_names.unpack_from_with_compression(data, offset, cache)
                _packed_name(name)  # written back later: a name that cannot be is refused now
                offset += used
                rtype, rclass, ttl, length = _RR.unpack_from(data, offset)
                offset += _RR.size
                if offset + length > len(data):
                    raise struct.error("record data cut short")
                rdata = _rdata(data, offset, offset + length, rtype, cache)
                offset += length
                if rtype != types.OPT:
                    section.append(ResourceRecord(name, rtype, rclass, ttl, rdata))
    except (struct.error, UnicodeError, RecursionError, ValueError) as e:
        raise WireError(f"a record that cannot be read: {e}") from None
    return answer
