"""policies.canonical: spellings of one destination collapse to one canonical form; bad input is an error."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from classgate.policies.canonical import canonical_host, canonical_url
from classgate.policies.errors import UrlError


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("example.com", "example.com"),
        ("EXAMPLE.com", "example.com"),
        ("example.com.", "example.com"),
        ("ex%61mple.com", "example.com"),
        ("EX%41MPLE.COM", "example.com"),
        ("bücher.de", "xn--bcher-kva.de"),
        ("BÜCHER.de", "xn--bcher-kva.de"),
        ("xn--bcher-kva.de", "xn--bcher-kva.de"),
        ("b%C3%BCcher.de", "xn--bcher-kva.de"),
        ("ｅｘａｍｐｌｅ．ｃｏｍ", "example.com"),  # full-width letters and dot (UTS #46 mapping)
        ("trường.vn", "xn--trng-rib8295b.vn"),  # a Vietnamese IDN, precomposed (NFC)
        ("trươ\u0300ng.vn", "xn--trng-rib8295b.vn"),  # the same with a combining grave accent (NFC)
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("[::1]", "[::1]"),
        ("::1", "[::1]"),
        ("[0:0:0:0:0:0:0:1]", "[::1]"),
        ("[2001:DB8:0:0:1:0:0:1]", "[2001:db8::1:0:0:1]"),
        # IPv6 forms of an IPv4 address are that address (our documented difference from WHATWG)
        ("[::ffff:192.168.0.1]", "192.168.0.1"),
        ("[::ffff:c0a8:1]", "192.168.0.1"),
        ("[::192.168.0.1]", "192.168.0.1"),
        ("[64:ff9b::192.168.0.1]", "192.168.0.1"),
        ("[64:ff9b::c0a8:1]", "192.168.0.1"),
        ("[::]", "[::]"),
        ("[::ffff:0:0:1]", "[::ffff:0:0:1]"),  # SIIT's ::ffff:0:0:0/96 is not the mapped prefix
        ("[64:ff9b:1::c0a8:1]", "[64:ff9b:1::c0a8:1]"),  # the local-use NAT64 prefix is a network's own
        ("under_score.example.com", "under_score.example.com"),
    ],
)
def test_canonical_host(raw: str, expected: str) -> None:
    assert canonical_host(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["", " ", ".", "exa mple.com", "a/b", "a:80", "[::1", "[1::2::3]", "256.0.0.1", "1.2.3.4.5", "0x100000000",
     "%zz.com", "exa<mple.com", "xn--bcher-kva.de\x00", "a\u0000b", "[::1]x", "1.2.3.09"],
)
def test_canonical_host_rejects(raw: str) -> None:
    with pytest.raises(UrlError):
        canonical_host(raw)


@pytest.mark.parametrize(
    ("url", "host", "path", "text"),
    [
        ("http://edu.vn@evil.com/", "evil.com", "/", "http://evil.com/"),
        ("http://user:pw@edu.vn:x@evil.com/", "evil.com", "/", "http://evil.com/"),
        ("http://2130706433/", "127.0.0.1", "/", "http://127.0.0.1/"),
        ("HTTPS://WWW.Example.COM:443/A/b", "www.example.com", "/A/b", "https://www.example.com/A/b"),
        ("http://example.com:8080", "example.com", "/", "http://example.com:8080/"),
        ("example.com/a/b", "example.com", "/a/b", "http://example.com/a/b"),
        ("http://example.com/a/./b/../c", "example.com", "/a/c", "http://example.com/a/c"),
        ("http://example.com/a/%2e%2E/c", "example.com", "/c", "http://example.com/c"),
        ("http://example.com/%7Euser/%41%2f", "example.com", "/~user/A/", "http://example.com/~user/A/"),
        # paths as the most permissive common server reads them
        ("http://x.example//secret", "x.example", "/secret", "http://x.example/secret"),
        ("http://x.example/a///b//", "x.example", "/a/b/", "http://x.example/a/b/"),
        ("http://x.example/a%2Fb", "x.example", "/a/b", "http://x.example/a/b"),
        ("http://x.example/a/..%2Fsecret", "x.example", "/secret", "http://x.example/secret"),
        ("http://x.example/a%5C..%5Csecret", "x.example", "/secret", "http://x.example/secret"),
        ("http://x.example/%2e%2e%2Fsecret", "x.example", "/secret", "http://x.example/secret"),
        ("http://x.example/q?u=http://y//z", "x.example", "/q", "http://x.example/q?u=http://y//z"),
        ("http://example.com\\a\\b", "example.com", "/a/b", "http://example.com/a/b"),
        ("http://example.com/../../x", "example.com", "/x", "http://example.com/x"),
        ("http://example.com/a b", "example.com", "/a%20b", "http://example.com/a%20b"),
        ("http://example.com/é", "example.com", "/%C3%A9", "http://example.com/%C3%A9"),
        ("http://example.com/p?q=1#frag", "example.com", "/p", "http://example.com/p?q=1"),
        ("http://[::1]:81/", "[::1]", "/", "http://[::1]:81/"),
        ("  http://example.com/\n", "example.com", "/", "http://example.com/"),
        ("http:\\\\example.com/x", "example.com", "/x", "http://example.com/x"),
        ("wss://chat.example.com/s", "chat.example.com", "/s", "wss://chat.example.com/s"),
    ],
)
def test_canonical_url(url: str, host: str, path: str, text: str) -> None:
    parsed = canonical_url(url)
    assert (parsed.host, parsed.path, parsed.text) == (host, path, text)


@pytest.mark.parametrize(
    "url",
    ["", "http://", "http:///", "http://exa mple.com/", "http:// example.com/", "http://example.com:99999/", "http://example.com:8a/",
     "javascript:alert(1)", "file:///etc/passwd", "gopher://example.com/", "http://[::1/", "http://a%00b/",
     "mailto:x@example.com"],
)
def test_canonical_url_rejects(url: str) -> None:
    with pytest.raises(UrlError):
        canonical_url(url)


def test_host_path_lowercases_the_path_only() -> None:
    assert canonical_url("http://Example.com/A/B").host_path == "example.com/a/b"


# ----------------------------------------------------------------- properties

_label = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12)
_hosts = st.one_of(
    st.lists(_label, min_size=1, max_size=4).map(".".join),
    st.from_regex(r"[A-Za-z0-9%._-]{1,30}", fullmatch=True),
    st.integers(0, 2**32 - 1).map(str),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
)


@settings(max_examples=400, deadline=None)
@given(_hosts)
def test_canonical_host_is_stable(raw: str) -> None:
    try:
        once = canonical_host(raw)
    except UrlError:
        return
    assert canonical_host(once) == once


_paths = st.text(alphabet=st.sampled_from(list("abcAB/.%2eE7f~ -_?=&#\\é")), max_size=30)


@settings(max_examples=400, deadline=None)
@given(_hosts, _paths)
def test_canonical_url_text_reparses_to_itself(host: str, path: str) -> None:
    try:
        once = canonical_url(f"http://{host}/{path}")
    except UrlError:
        return
    again = canonical_url(once.text)
    assert again == once


_url_chars = st.sampled_from(list("abcXYZ019-._~!$&()*+,;=:@/?[]^|%#'\"{}` \\é") + ["/./", "/../", "?", "//"])


@settings(max_examples=1500, deadline=None)
@given(st.sampled_from(["http://", "https://", "HTTP://", "http:/", "ftp://"]),
       st.sampled_from(["example.com", "a.b-c_d.org", "Example.COM", "x.0x1f", "a.b1", "1.2.3.4", "u@h.com",
                        "h.com:81", "h.com.", "xn--bcher-kva.de", "h.com?", "h.com#"]),
       st.lists(_url_chars, max_size=12).map("".join))
def test_fast_path_agrees_with_the_full_parser(scheme: str, host: str, tail: str) -> None:
    from classgate.policies.canonical import _already_canonical, _canonical_url_full

    url = scheme + host + tail
    fast = _already_canonical(url)
    if fast is not None:
        assert fast == _canonical_url_full(url)
