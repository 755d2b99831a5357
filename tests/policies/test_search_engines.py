"""SafeSearch as pure functions: which hosts are engines, and the change forced on each."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from classgate.policies.search_engines import engine_of, plan


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
    ],
)
def test_engine_of(host, engine):
    assert engine_of(host) == engine


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
    ],
)
def test_no_plan(host, path, levels):
    assert plan(host, path, levels) is None
