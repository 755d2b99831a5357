"""The search engines whose safe mode a policy forces: which destinations are theirs, and what to change.

One definition serves both ways of forcing it:
- intercepted requests are rewritten (proxy/addons/safesearch_rewrite.py applies `plan`), which needs
  the URL: each engine's parameter or header;
- devices that are not inspected get it by DNS: each of the engine's search hosts answers with the safe
  host the engine documents (`dns_safe_host`), which serves only safe results under the engine's own
  certificate.

What is a search is decided on the canonical host and path (policies.canonical), so no spelling of a URL
(`//search`, `/%73earch`, `WWW.Google.COM.`) gets around it.

Levels per engine (policy `safe_search`: strict | moderate | off):
- google: `safe=active` for strict. Google no longer has a URL switch for a middle level, so moderate only
  removes an explicit `safe=off` (Google's own default, blurring, applies). DNS: forcesafesearch.google.com.
- bing: `adlt=strict` / `adlt=moderate`. DNS: strict.bing.com.
- duckduckgo: `kp=1` (strict) / `kp=-1` (moderate), in the URL and in a form body (html. and lite. search
  by POST). DNS: safe.duckduckgo.com.
- youtube: the `YouTube-Restrict: Strict|Moderate` request header (Google's documented network switch), on
  its sites and its APIs. DNS: restrict.youtube.com / restrictmoderate.youtube.com.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from classgate.policies.model import SafeSearchSettings
from classgate.policies.vocabulary import SafeSearchEngine, SafeSearchLevel

# Google's own list of its search domains (https://www.google.com/supported_domains, 2024), the country
# domain of Vietnam first; each serves search at the domain and at www.
GOOGLE_DOMAINS: Final[tuple[str, ...]] = (
    "google.com.vn", "google.com", "google.ad", "google.ae", "google.com.af", "google.com.ag", "google.al",
    "google.am", "google.co.ao", "google.com.ar", "google.as", "google.at", "google.com.au", "google.az",
    "google.ba", "google.com.bd", "google.be", "google.bf", "google.bg", "google.com.bh", "google.bi",
    "google.bj", "google.com.bn", "google.com.bo", "google.com.br", "google.bs", "google.bt", "google.co.bw",
    "google.by", "google.com.bz", "google.ca", "google.cd", "google.cf", "google.cg", "google.ch", "google.ci",
    "google.co.ck", "google.cl", "google.cm", "google.cn", "google.com.co", "google.co.cr", "google.com.cu",
    "google.cv", "google.com.cy", "google.cz", "google.de", "google.dj", "google.dk", "google.dm",
    "google.com.do", "google.dz", "google.com.ec", "google.ee", "google.com.eg", "google.es", "google.com.et",
    "google.fi", "google.com.fj", "google.fm", "google.fr", "google.ga", "google.ge", "google.gg",
    "google.com.gh", "google.com.gi", "google.gl", "google.gm", "google.gr", "google.com.gt", "google.gy",
    "google.com.hk", "google.hn", "google.hr", "google.ht", "google.hu", "google.co.id", "google.ie",
    "google.co.il", "google.im", "google.co.in", "google.iq", "google.is", "google.it", "google.je",
    "google.com.jm", "google.jo", "google.co.jp", "google.co.ke", "google.com.kh", "google.ki", "google.kg",
    "google.co.kr", "google.com.kw", "google.kz", "google.la", "google.com.lb", "google.li", "google.lk",
    "google.co.ls", "google.lt", "google.lu", "google.lv", "google.com.ly", "google.co.ma", "google.md",
    "google.me", "google.mg", "google.mk", "google.ml", "google.com.mm", "google.mn", "google.com.mt",
    "google.mu", "google.mv", "google.mw", "google.com.mx", "google.com.my", "google.co.mz", "google.com.na",
    "google.com.ng", "google.com.ni", "google.ne", "google.nl", "google.no", "google.com.np", "google.nr",
    "google.nu", "google.co.nz", "google.com.om", "google.com.pa", "google.com.pe", "google.com.pg",
    "google.com.ph", "google.com.pk", "google.pl", "google.pn", "google.com.pr", "google.ps", "google.pt",
    "google.com.py", "google.com.qa", "google.ro", "google.ru", "google.rw", "google.com.sa", "google.com.sb",
    "google.sc", "google.se", "google.com.sg", "google.sh", "google.si", "google.sk", "google.com.sl",
    "google.sn", "google.so", "google.sm", "google.sr", "google.st", "google.com.sv", "google.td", "google.tg",
    "google.co.th", "google.com.tj", "google.tl", "google.tm", "google.tn", "google.to", "google.com.tr",
    "google.tt", "google.com.tw", "google.co.tz", "google.com.ua", "google.co.ug", "google.co.uk",
    "google.com.uy", "google.co.uz", "google.com.vc", "google.co.ve", "google.co.vi", "google.vu", "google.ws",
    "google.rs", "google.co.za", "google.co.zm", "google.co.zw", "google.cat",
)


@dataclass(frozen=True)
class Engine:
    name: SafeSearchEngine
    hosts: frozenset[str]  # canonical hosts where the engine searches (every path, unless `paths` says)
    # Paths that are searches (lower case; a path matches when it equals one or starts with one + "/");
    # empty: every path of `hosts` (the engine's switch costs nothing on its other pages).
    paths: frozenset[str] = frozenset()
    # Host -> path prefixes that belong to the engine on a host it shares (www.googleapis.com/youtube/).
    shared: dict[str, tuple[str, ...]] = field(default_factory=dict)
    dns_safe: dict[SafeSearchLevel, str] = field(default_factory=dict)  # level -> the safe host the engine documents
    dns_hosts: frozenset[str] = frozenset()  # the hosts answered with the safe host at DNS


def _with_www(domains: tuple[str, ...]) -> frozenset[str]:
    return frozenset(h for d in domains for h in (d, f"www.{d}"))


_GOOGLE_HOSTS = _with_www(GOOGLE_DOMAINS)
_DDG_HOSTS = frozenset({"duckduckgo.com", "www.duckduckgo.com", "html.duckduckgo.com", "lite.duckduckgo.com",
                        "links.duckduckgo.com", "start.duckduckgo.com"})
_YOUTUBE_HOSTS = frozenset({"www.youtube.com", "youtube.com", "m.youtube.com", "music.youtube.com",
                            "youtubei.googleapis.com", "youtube.googleapis.com", "www.youtube-nocookie.com",
                            "youtube-nocookie.com"})

ENGINES: Final[dict[SafeSearchEngine, Engine]] = {
    "google": Engine(
        "google", _GOOGLE_HOSTS,
        # Search results, suggestions and the pages that search from (image search is /search?tbm=isch).
        # Static files, fonts and logging beacons are left alone.
        paths=frozenset({"/", "/search", "/webhp", "/imghp", "/complete/search", "/videohp"}),
        dns_safe={"strict": "forcesafesearch.google.com", "moderate": "forcesafesearch.google.com"},
        dns_hosts=_GOOGLE_HOSTS,
    ),
    "bing": Engine(
        "bing", frozenset({"www.bing.com", "bing.com", "cn.bing.com", "m.bing.com"}),
        dns_safe={"strict": "strict.bing.com", "moderate": "strict.bing.com"},
        dns_hosts=frozenset({"www.bing.com", "bing.com"}),
    ),
    "duckduckgo": Engine(
        "duckduckgo", _DDG_HOSTS,
        dns_safe={"strict": "safe.duckduckgo.com", "moderate": "safe.duckduckgo.com"},
        dns_hosts=_DDG_HOSTS,
    ),
    "youtube": Engine(
        "youtube", _YOUTUBE_HOSTS,
        shared={"www.googleapis.com": ("/youtube/",)},
        dns_safe={"strict": "restrict.youtube.com", "moderate": "restrictmoderate.youtube.com"},
        dns_hosts=_YOUTUBE_HOSTS,
    ),
}
_BY_HOST: Final[dict[str, Engine]] = {h: e for e in ENGINES.values() for h in e.hosts}
_BY_SHARED_HOST: Final[dict[str, Engine]] = {h: e for e in ENGINES.values() for h in e.shared}
_BY_DNS_HOST: Final[dict[str, Engine]] = {h: e for e in ENGINES.values() for h in e.dns_hosts}


@dataclass(frozen=True)
class Plan:
    """What to change on one request to force an engine's safe mode."""

    engine: SafeSearchEngine
    set_params: dict[str, str] = field(default_factory=dict)
    remove_params: dict[str, str] = field(default_factory=dict)  # name -> only when it has this value
    set_headers: dict[str, str] = field(default_factory=dict)
    form_too: bool = False  # the parameters go into an urlencoded form body too (a search sent by POST)


def engine_of(host: str, path: str = "/") -> SafeSearchEngine | None:
    """The search engine `host` (canonical) + `path` (canonical) belongs to, or None."""
    engine = _engine(host, path.lower())
    return engine.name if engine is not None else None


def _engine(host: str, path: str) -> Engine | None:
    engine = _BY_HOST.get(host)
    if engine is not None:
        return engine
    engine = _BY_SHARED_HOST.get(host)
    if engine is not None and path.startswith(engine.shared[host]):
        return engine
    return None


def is_engine_host(host: str) -> bool:
    """True when canonical `host` serves an engine (on some of its paths): cheap, for every request."""
    return host in _BY_HOST or host in _BY_SHARED_HOST


def is_search(host: str, path: str) -> bool:
    """True when the canonical `host` + `path` is a search page or API of an engine."""
    engine = _engine(host, path.lower())
    return engine is not None and _searches(engine, path.lower())


def _searches(engine: Engine, path: str) -> bool:
    if not engine.paths:
        return True
    trimmed = path.rstrip("/") or "/"
    return trimmed in engine.paths or any(trimmed.startswith(p + "/") for p in engine.paths if p != "/")


def plan(host: str, path: str, settings: SafeSearchSettings) -> Plan | None:
    """The change that forces safe mode for a request to canonical `host` + `path`, or None (not a search
    of an engine whose level is on)."""
    lowered = path.partition("?")[0].lower()
    engine = _engine(host, lowered)
    if engine is None:
        return None
    level: SafeSearchLevel = getattr(settings, engine.name)
    if level == "off" or not _searches(engine, lowered):
        return None
    if engine.name == "youtube":
        return Plan("youtube", set_headers={"YouTube-Restrict": "Strict" if level == "strict" else "Moderate"})
    if engine.name == "google":
        if level == "strict":
            return Plan("google", set_params={"safe": "active"})
        return Plan("google", remove_params={"safe": "off"})
    if engine.name == "bing":
        return Plan("bing", set_params={"adlt": level})
    return Plan("duckduckgo", set_params={"kp": "1" if level == "strict" else "-1"}, form_too=True)


def dns_safe_host(host: str, settings: SafeSearchSettings) -> str | None:
    """The safe host to answer a DNS query for canonical `host` with, or None (not an engine's, or off)."""
    engine = _BY_DNS_HOST.get(host)
    if engine is None:
        return None
    level: SafeSearchLevel = getattr(settings, engine.name)
    return engine.dns_safe.get(level)
