"""The sites that a web proxy's host name stands for, so they are decided with it.

Google Translate's website proxy serves any site under a host of its own: `https://www-bet88-com.translate.goog/`
is bet88.com, fetched by Google and rewritten. To the gateway (the DNS question, the SNI, the CONNECT target,
the Host header) that is a Google host that no list names, so a student can reach every blocked site that way:
blocklists only catch the few encoded hosts somebody once listed (UT1's malware and phishing lists name a few
hundred such hosts). The site's name is in the host itself, so it can be decided at every step where the host
is, even on a connection that is not decrypted: the engine looks the site up with the proxy's host and a rule
sees the categories of both (policies/engine.py, `_host_facts_uncached`).

The encoding is Google's, as documented for ad networks ("Convert the Google Translate URL to the original
URL", developers.google.com/search/docs/appearance/ad-network-and-translation): in the label before
`.translate.goog`, a hyphen between two letters or digits was a dot and a double hyphen was a hyphen; a leading
`0-` marks an internationalised name (its `xn--` prefix was dropped), a leading `1-` a name that needed one.
Which of the two prefixes was used is said only by the URL's `_x_tr_enc` parameter, which a DNS question or an
SNI does not carry: every reading is decided, so none is missed. A name too long for one label has its start
moved into the `_x_tr_hp` parameter; the label keeps its end, the registrable domain the lists match by suffix.
"""

from __future__ import annotations

import re
from typing import Final

from classgate.policies.canonical import canonical_host
from classgate.policies.errors import UrlError

TRANSLATE_PROXY_SUFFIX: Final = ".translate.goog"
# A proxied site may itself be a proxy's host (Translate of a Translate page): decoded again, up to this many
# layers. Each layer doubles the hyphens and adds 15 characters: a fourth needs a label longer than the 63
# octets a DNS name allows, so no resolvable name nests deeper.
MAX_NESTING: Final = 3
_SINGLE_HYPHEN = re.compile(r"(?<=[a-z0-9])-(?=[a-z0-9])")


def proxied_origins(host: str) -> tuple[str, ...]:
    """The canonical hosts of the sites that `host` (canonical) proxies; () for a host that is no web proxy's."""
    found: list[str] = []
    todo = [host]
    for _ in range(MAX_NESTING):
        decoded = [origin for h in todo for origin in _translate_origins(h) if origin not in found]
        if not decoded:
            break
        found += decoded
        todo = decoded
    return tuple(dict.fromkeys(found))


def _translate_origins(host: str) -> list[str]:
    if not host.endswith(TRANSLATE_PROXY_SUFFIX):
        return []
    label = host[: -len(TRANSLATE_PROXY_SUFFIX)].rpartition(".")[2]
    readings = [_undash(label)]
    if label.startswith("0-"):
        readings.append("xn--" + _undash(label[2:]))
    if label.startswith("1-"):
        readings.append(_undash(label[2:]))
    origins: list[str] = []
    for text in readings:
        if "." not in text:
            continue  # one label: not a site's name (the proxy's own hosts, such as translate.goog itself)
        try:
            origins.append(canonical_host(text))
        except UrlError:
            continue  # no valid host name: nothing more to decide than the proxy's host
    return origins


def _undash(label: str) -> str:
    return _SINGLE_HYPHEN.sub(".", label).replace("--", "-")
