"""SafeSearch as pure functions: which hosts are engines, and the change forced on each."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from classgate.policies.canonical import canonical_url
from classgate.policies.search_engines import GOOGLE_DOMAINS, dns_safe_host, engine_of, is_search, plan


@dataclass
class Levels:
    google: str = "strict"
    bing: str = "strict"
    duckduckgo: str = "strict"
    youtube: str = "strict"


@pytest.mark.parametrize(
    ("host", "engine"),
    [
        ("www.google.com", "google"),
        ("google.com", "google"),
        ("www.google.com.vn", "google"),
        ("www.google.co.uk", "google"),
        ("www.google.de", "google"),
        ("mail.google.com", None),
        ("google.evil.example", None),
        ("www.google.com.evil.example", None),
        ("notgoogle.com", None),
        ("www.bing.com", "bing"),
        ("bing.com", "bing"),
        ("bing.com.evil.example", None),
        ("duckduckgo.com", "duckduckgo"),
        ("html.duckduckgo.com", "duckduckgo"),
        ("www.youtube.com", "youtube"),
        ("m.youtube.com", "youtube"),
        ("youtubei.googleapis.com", "youtube"),
        ("example.com", None),
        ("google.com.vn", "google"),
        ("www.google.cat", "google"),
        ("www.google.co.ao", "google"),
        ("lite.duckduckgo.com", "duckduckgo"),
        ("links.duckduckgo.com", "duckduckgo"),
        ("www.youtube-nocookie.com", "youtube"),
        ("youtube-nocookie.com", "youtube"),
        ("music.youtube.com", "youtube"),
        ("www.googleapis.com", None),  # shared: only its /youtube/ paths are YouTube's
    ],
)
def test_engine_of(host, engine):
    assert engine_of(host) == engine


def test_every_google_search_domain_is_google_with_and_without_www():
    assert len(GOOGLE_DOMAINS) > 180 and GOOGLE_DOMAINS[0] == "google.com.vn"
    for domain in GOOGLE_DOMAINS:
        assert engine_of(domain) == engine_of(f"www.{domain}") == "google", domain


@pytest.mark.parametrize(
    ("url", "search"),
    [
        # Decided on the canonical form: no spelling of the path gets round it.
        ("https://www.google.com/search?q=x", True),
        ("https://www.google.com//search?q=x", True),
        ("https://www.google.com/%73earch?q=x", True),
        ("https://www.google.com/SEARCH?q=x", True),
        ("https://WWW.Google.COM./search?q=x", True),
        ("https://www.google.com/search/?q=x", True),
        ("https://www.google.com/a/../search?q=x", True),
        ("https://www.google.com/complete/search?q=x", True),
        ("https://www.google.com/images/branding/logo.png", False),
        ("https://www.googleapis.com/youtube/v3/search?q=x", True),
        ("https://www.googleapis.com//youtube/v3/search?q=x", True),
        ("https://www.googleapis.com/drive/v3/files", False),
        ("https://html.duckduckgo.com/html/", True),
        ("https://www.bing.com/images/search?q=x", True),
    ],
)
def test_is_search_on_the_canonical_form(url, search):
    cu = canonical_url(url)
    assert is_search(cu.host, cu.path) is search


@pytest.mark.parametrize(
    ("host", "levels", "safe_host"),
    [
        ("www.google.com.vn", Levels(), "forcesafesearch.google.com"),
        ("google.com", Levels(), "forcesafesearch.google.com"),
        ("www.google.com", Levels(google="off"), None),
        ("www.bing.com", Levels(bing="moderate"), "strict.bing.com"),  # Bing has no moderate host
        ("duckduckgo.com", Levels(), "safe.duckduckgo.com"),
        ("html.duckduckgo.com", Levels(), "safe.duckduckgo.com"),
        ("www.youtube.com", Levels(), "restrict.youtube.com"),
        ("m.youtube.com", Levels(youtube="moderate"), "restrictmoderate.youtube.com"),
        ("www.youtube-nocookie.com", Levels(), "restrict.youtube.com"),
        ("mail.google.com", Levels(), None),
        ("www.googleapis.com", Levels(), None),  # shared with every Google API: not answered by DNS
    ],
)
def test_dns_safe_host(host, levels, safe_host):
    assert dns_safe_host(host, levels) == safe_host


@pytest.mark.parametrize(
    ("host", "path", "levels", "params", "removed", "headers"),
    [
        ("www.google.com", "/search?q=x", Levels(), {"safe": "active"}, {}, {}),
        ("www.google.com.vn", "/search", Levels(), {"safe": "active"}, {}, {}),
        ("www.google.com", "/", Levels(), {"safe": "active"}, {}, {}),
        ("www.google.com", "/complete/search?q=x", Levels(), {"safe": "active"}, {}, {}),
        ("www.google.com", "/search", Levels(google="moderate"), {}, {"safe": "off"}, {}),
        ("www.bing.com", "/search?q=x", Levels(), {"adlt": "strict"}, {}, {}),
        ("www.bing.com", "/images/search?q=x", Levels(bing="moderate"), {"adlt": "moderate"}, {}, {}),
        ("duckduckgo.com", "/?q=x", Levels(), {"kp": "1"}, {}, {}),
        ("duckduckgo.com", "/?q=x", Levels(duckduckgo="moderate"), {"kp": "-1"}, {}, {}),
        ("www.youtube.com", "/watch?v=1", Levels(), {}, {}, {"YouTube-Restrict": "Strict"}),
        ("www.youtube.com", "/", Levels(youtube="moderate"), {}, {}, {"YouTube-Restrict": "Moderate"}),
        ("www.youtube-nocookie.com", "/embed/x", Levels(), {}, {}, {"YouTube-Restrict": "Strict"}),
        ("www.googleapis.com", "/youtube/v3/search", Levels(), {}, {}, {"YouTube-Restrict": "Strict"}),
        ("youtubei.googleapis.com", "/youtubei/v1/search", Levels(), {}, {}, {"YouTube-Restrict": "Strict"}),
        ("html.duckduckgo.com", "/html/", Levels(), {"kp": "1"}, {}, {}),
        ("lite.duckduckgo.com", "/lite/", Levels(), {"kp": "1"}, {}, {}),
        ("www.google.cat", "/search", Levels(), {"safe": "active"}, {}, {}),
    ],
)
def test_plan(host, path, levels, params, removed, headers):
    p = plan(host, path, levels)
    assert p is not None
    assert (p.set_params, p.remove_params, p.set_headers) == (params, removed, headers)


@pytest.mark.parametrize(
    ("host", "path", "levels"),
    [
        ("www.google.com", "/search", Levels(google="off")),
        ("www.google.com", "/images/branding/logo.png", Levels()),  # static file: nothing to enforce
        ("www.youtube.com", "/", Levels(youtube="off")),
        ("example.com", "/search", Levels()),
        ("www.googleapis.com", "/drive/v3/files", Levels()),
    ],
)
def test_no_plan(host, path, levels):
    assert plan(host, path, levels) is None
