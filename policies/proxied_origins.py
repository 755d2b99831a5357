"""The sites that a web proxy's or cache's host name stands for, so they are decided with it.

Google Translate's website proxy serves any site under a host of its own: `https://www-bet88-com.translate.goog/`
is bet88.com, fetched by Google and rewritten. To the gateway (the DNS question, the SNI, the CONNECT target,
the Host header) that is a Google host that no list names, so a student can reach every blocked site that way:
blocklists only catch the few encoded hosts somebody once listed (UT1's malware and phishing lists name a few
hundred such hosts). The AMP caches do the same for a site's AMP pages (`www-bet88-com.cdn.ampproject.org`).
The site's name is in the host itself, so it can be decided at every step where the host is, even on a
connection that is not decrypted: the engine looks the site up with the proxy's host and a rule sees the
categories of both (policies/engine.py, `_host_facts_uncached`).

The encodings are the services' own, as they document them:
* Google Translate ("Convert the Google Translate URL to the original URL",
  developers.google.com/search/docs/appearance/ad-network-and-translation): in the label before
  `.translate.goog`, a hyphen between two letters or digits was a dot and a double hyphen was a hyphen; a
  leading `0-` marks an internationalised name (its `xn--` prefix was dropped), a leading `1-` a name that
  needed one. Which of the two was used is said only by the URL's `_x_tr_enc` parameter, which a DNS question
  or an SNI does not carry: every reading is decided, so none is missed. A name too long for one label has its
  start moved into the `_x_tr_hp` parameter; the label keeps its end, the registrable domain lists match.
* The AMP caches ("AMP Cache URL format", amp.dev; the caches are those of amphtml's caches.json): the same
  hyphens and dots, on the Unicode form of the name, then Punycode again; a result that would look like an
  `xn--` label is wrapped in `0-` and `-0`. Where the name does not fit, the label is a hash: nothing to decode,
  and the cache's path (`/c/s/<site>/...`) is the site's own URL, which the lists then see on decrypted traffic.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from classgate.policies.canonical import canonical_host
from classgate.policies.errors import UrlError
from classgate.policies.idna_uts46 import label_to_unicode

# A proxied site may itself be a proxy's host (Translate of a Translate page): decoded again, up to this many
# layers. Each layer doubles the hyphens and adds 15 characters: a fourth needs a label longer than the 63
# octets a DNS name allows, so no resolvable name nests deeper.
MAX_NESTING: Final = 3
_SINGLE_HYPHEN = re.compile(r"(?<=\w)-(?=\w)")  # \w: Unicode letters too (the AMP caches decode to them)


def _undash(label: str) -> str:
    return _SINGLE_HYPHEN.sub(".", label).replace("--", "-")


def _translate_readings(label: str) -> list[str]:
    readings = [_undash(label)]
    if label.startswith("0-"):
        readings.append("xn--" + _undash(label[2:]))
    if label.startswith("1-"):
        readings.append(_undash(label[2:]))
    return readings


def _amp_readings(label: str) -> list[str]:
    try:
        label = label_to_unicode(label)
    except UrlError:
        return []
    if label.startswith("0-") and label.endswith("-0"):
        label = label[2:-2]
    return [_undash(label)]


# The proxies and caches whose host names carry the site they serve: suffix -> the readings of the label before it.
PROXY_HOST_SUFFIXES: Final[dict[str, Callable[[str], list[str]]]] = {
    ".translate.goog": _translate_readings,  # Google Translate's website proxy
    ".cdn.ampproject.org": _amp_readings,  # the Google AMP Cache
    ".bing-amp.com": _amp_readings,  # the Bing AMP Cache
}

_SUFFIXES: Final = tuple(PROXY_HOST_SUFFIXES)


def proxied_origins(host: str) -> tuple[str, ...]:
    """The canonical hosts of the sites that `host` (canonical) proxies; () for a host that is no web proxy's."""
    if not host.endswith(_SUFFIXES):  # nearly every host: one C call, as it runs on every host-lookup miss
        return ()
    found: list[str] = []
    todo = [host]
    for _ in range(MAX_NESTING):
        decoded = [origin for h in todo for origin in _origins(h) if origin not in found]
        if not decoded:
            break
        found += decoded
        todo = decoded
    return tuple(dict.fromkeys(found))


def _origins(host: str) -> list[str]:
    for suffix, readings in PROXY_HOST_SUFFIXES.items():
        if host.endswith(suffix):
            label = host[: -len(suffix)].rpartition(".")[2]
            break
    else:
        return []
    origins: list[str] = []
    for text in readings(label):
        if "." not in text:
            continue  # one label: not a site's name (the proxy's own hosts, a cache's hashed labels)
        try:
            origins.append(canonical_host(text))
        except UrlError:
            continue  # no valid host name: nothing more to decide than the proxy's host
    return origins
