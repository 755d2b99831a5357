"""No `ech` parameter leaves the gateway: HTTPS and SVCB records (types 65, 64) lose it, in every section.

Strip, not NODATA: the record's other parameters still serve the device (`alpn`, the port, the address hints,
and the record's mere presence, which makes Chrome and Firefox go straight to https://). Without an ECHConfig
a browser sends its real destination in the SNI (RFC 9849 section 6.1), which the TLS gate decides.

- A record whose `mandatory` key lists `ech` is dropped: without it the record is invalid (RFC 9460
  section 8), and answering as if ECH were optional would misstate the publisher's record.
- A record whose parameters cannot be read is dropped: it could hide an ECHConfig.
- The RRSIGs over a changed HTTPS/SVCB RRset are dropped and the AD bit cleared. DNSSEC-validating stubs see
  an unsigned RRset in a signed zone and treat it as bogus, which a stub must handle as a failed HTTPS
  lookup: it connects by A/AAAA, without ECH. NODATA would be no different for them (it carries no
  NSEC proof either), and worse for every browser that does not validate.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from mitmproxy.dns import ResourceRecord
from mitmproxy.net.dns import https_records, types

from classgate.proxy.dns.wire import Answer

ECH_KEY = https_records.SVCParamKeys.ECH.value
MANDATORY_KEY = https_records.SVCParamKeys.MANDATORY.value
SERVICE_TYPES = frozenset({types.HTTPS, types.SVCB})


@dataclass(frozen=True, slots=True)
class Stripped:
    https: int = 0  # HTTPS records changed or dropped
    svcb: int = 0

    def __bool__(self) -> bool:
        return bool(self.https or self.svcb)


def _without_ech(rr: ResourceRecord) -> ResourceRecord | None:
    """`rr` itself (no ECH in it), a copy without `ech`, or None (drop it); raises nothing."""
    try:
        record = https_records.unpack(rr.data)
        if ECH_KEY not in record.params:
            return rr
        mandatory = record.params.get(MANDATORY_KEY, b"")
        if ECH_KEY in struct.unpack(f"!{len(mandatory) // 2}H", mandatory):
            return None
        del record.params[ECH_KEY]
        return ResourceRecord(rr.name, rr.type, rr.class_, rr.ttl, https_records.pack(record))
    except (struct.error, ValueError, UnicodeError, IndexError):
        return None


def strip_ech(answer: Answer) -> Stripped:
    """Remove every `ech` parameter from `answer` in place; how many records of each type were changed."""
    https = svcb = 0
    for section in (answer.answers, answer.authorities, answer.additionals):
        if not any(rr.type in SERVICE_TYPES for rr in section):
            continue
        changed: set[str] = set()
        kept: list[ResourceRecord] = []
        for rr in section:
            if rr.type in SERVICE_TYPES:
                clean = _without_ech(rr)
                if clean is not rr:
                    changed.add(rr.name.lower())
                    https += rr.type == types.HTTPS
                    svcb += rr.type == types.SVCB
                if clean is None:
                    continue
                rr = clean
            kept.append(rr)
        if changed:
            kept = [rr for rr in kept if not (rr.type == types.RRSIG and rr.name.lower() in changed
                                              and int.from_bytes(rr.data[:2], "big") in SERVICE_TYPES)]
            answer.authenticated = False
        section[:] = kept
    return Stripped(https, svcb)
