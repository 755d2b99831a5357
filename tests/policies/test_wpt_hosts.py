"""WHATWG host parsing against the web-platform-tests data (the oracle for policies.canonical).

- urltestdata.json: every absolute special-scheme case (http, https, ws, wss, ftp): the parsed `hostname`
  must equal ours, and an input the standard rejects must raise UrlError (never be allowed by accident).
  Our documented differences: one trailing dot is dropped from the host (more than one is an error), and an
  IPv6 address standing for an IPv4 one (mapped, compatible, NAT64) is that IPv4 address.
- toascii.json: host -> ASCII, `output: null` means failure.
"""

from __future__ import annotations

import json

import pytest

from classgate.policies.canonical import canonical_host, canonical_url, embedded_ipv4
from classgate.policies.errors import UrlError
from classgate.policies.ipliteral import parse_ipv6
from tests.policies.engine_testdata import have, shared_path

OUR_SCHEMES = ("http:", "https:", "ws:", "wss:", "ftp:")


def _url_cases() -> list:
    path = shared_path("wpt-url", "urltestdata.json") if _have("urltestdata.json") else None
    if path is None:
        return [pytest.param(None, marks=pytest.mark.skip(reason="../shared/data/wpt-url absent"))]
    cases = []
    for item in json.loads(path.read_text(encoding="utf-8")):
        if not isinstance(item, dict):
            continue
        text = item["input"]
        scheme = text.strip("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13"
                            "\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f ").lower()
        # Relative references need a base; the filter only ever sees absolute URLs.
        if not scheme.startswith(OUR_SCHEMES):
            continue
        # `http:foo.com` with a base is relative to it in the standard; we never have a base.
        after_scheme = scheme.partition(":")[2].replace("\t", "").replace("\n", "")
        if item.get("base") is not None and after_scheme[:2] not in ("//", "\\\\", "/\\", "\\/"):
            continue
        if item.get("failure") or item.get("protocol") in OUR_SCHEMES:
            cases.append(pytest.param(item, id=repr(text)[:60]))
    return cases


def _toascii_cases() -> list:
    if not _have("toascii.json"):
        return [pytest.param(None, marks=pytest.mark.skip(reason="../shared/data/wpt-url absent"))]
    items = json.loads(shared_path("wpt-url", "toascii.json").read_text(encoding="utf-8"))
    return [pytest.param(i, id=repr(i["input"])[:60]) for i in items if isinstance(i, dict)]


def _have(name: str) -> bool:
    return have("wpt-url", name)


@pytest.mark.parametrize("case", _url_cases())
def test_urltestdata_hostname(case: dict) -> None:
    if case.get("failure"):
        with pytest.raises(UrlError):
            canonical_url(case["input"])
        return
    if not case["hostname"].strip(".") or case["hostname"].endswith(".."):
        # Our documented difference: one trailing dot is dropped; a host of only dots, or with an empty last
        # label left after that, is an error (a block) rather than a name no resolver would accept.
        with pytest.raises(UrlError):
            canonical_url(case["input"])
        return
    parsed = canonical_url(case["input"])
    expected = case["hostname"].rstrip(".")
    if expected.startswith("["):
        # Our documented difference: an IPv6 address that stands for an IPv4 one is that IPv4 address.
        expected = embedded_ipv4(parse_ipv6(expected[1:-1], expected)) or expected
    assert parsed.host == expected
    assert parsed.scheme + ":" == case["protocol"]
    expected_port = case["port"]
    assert (str(parsed.port) if expected_port else "") == expected_port or not expected_port


@pytest.mark.parametrize("case", _toascii_cases())
def test_toascii(case: dict) -> None:
    if case["output"] is None:
        with pytest.raises(UrlError):
            canonical_host(case["input"])
    else:
        assert canonical_host(case["input"]) == case["output"].rstrip(".")


def test_wpt_data_was_found() -> None:
    # Guard against the parametrised tests silently collecting nothing (when the data is there at all).
    if not (_have("urltestdata.json") and _have("toascii.json")):
        pytest.skip("../shared/data/wpt-url absent")
    assert len(_url_cases()) > 200 and len(_toascii_cases()) > 50

