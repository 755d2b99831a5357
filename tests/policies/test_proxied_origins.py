"""The sites a web proxy's or cache's host names (policies/proxied_origins.py), read as each documents it."""

from __future__ import annotations

import pytest

from classgate.policies.proxied_origins import proxied_origins


@pytest.mark.parametrize(
    ("host", "origins"),
    [
        ("www-bet88-com.translate.goog", ("www.bet88.com",)),
        ("bet88-com.translate.goog", ("bet88.com",)),
        ("www-example--site-com-vn.translate.goog", ("www.example-site.com.vn",)),  # "--" was a hyphen
        ("x---y-com.translate.goog", ("x--y.com",)),
        # "0-": an IDN whose "xn--" was dropped; which prefix was used is only in _x_tr_enc: both readings.
        ("0-bcher--kva-de.translate.goog", ("0.bcher-kva.de", "xn--bcher-kva.de")),  # bücher.de
        ("1-800-flowers-com.translate.goog", ("1.800.flowers.com", "800.flowers.com")),
        # Translate of a Translate page: both layers.
        ("www--bet88--com-translate-goog.translate.goog", ("www-bet88-com.translate.goog", "www.bet88.com")),
        ("www-BET88-com.translate.goog", ("www.bet88.com",)),  # the site comes out canonical
        # The AMP caches: the same encoding on the Unicode name, then Punycode; "0-...-0" around an xn--lookalike.
        ("www-bet88-com.cdn.ampproject.org", ("www.bet88.com",)),
        ("amp-dev.cdn.ampproject.org", ("amp.dev",)),
        ("xn--bcher-de-65a.cdn.ampproject.org", ("xn--bcher-kva.de",)),  # bücher.de
        ("xn--b-de-0ra.bing-amp.com", ("xn--b-eha.de",)),  # bü.de: a hyphen next to a non-ASCII letter
        ("0-ab--cd-com-0.bing-amp.com", ("ab-cd.com",)),  # ab-cd.com: "ab--cd-com" looks like an ACE label
        ("v2mmzqbpqcy2luatmcnkjfjgexikkjppvvhcjmhr5ozfxqt54aha.cdn.ampproject.org", ()),  # a hashed label
        ("xn--zz.cdn.ampproject.org", ()),  # no valid Punycode
        ("cdn.ampproject.org", ()),
        # No site in it: the proxy's own hosts, one label, or no valid host name.
        ("translate.goog", ()),
        ("www.translate.goog", ()),
        ("example.translate.goog", ()),
        ("translate-goog.example", ()),
        ("www-bet88-com.translate.goog.example", ()),
        ("bet88.com", ()),
    ],
)
def test_proxied_origins(host: str, origins: tuple[str, ...]) -> None:
    assert proxied_origins(host) == origins


def _translated(host: str) -> str:
    """The host Google Translate's proxy serves `host` under."""
    return host.replace("-", "--").replace(".", "-") + ".translate.goog"


def test_every_nesting_a_dns_name_can_hold_is_decoded() -> None:
    host = "bet88.com"
    for _ in range(3):  # a fourth layer needs a label of more than 63 octets: DNS cannot resolve it
        host = _translated(host)
    assert len(host.split(".")[0]) <= 63
    assert proxied_origins(host)[-1] == "bet88.com"
    assert len(proxied_origins(_translated(host))) == 3  # bounded, whatever a client writes
