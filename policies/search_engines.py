"""SafeSearch enforcement as pure functions: which host is which engine, and what to change.

Only intercepted traffic can be rewritten (the proxy must see the URL). The addon in
proxy/addons/safesearch_rewrite.py applies the plan to a mitmproxy request.

Levels per engine (policy `safe_search`: strict | moderate | off):
- google: `safe=active` for strict. Google no longer has a URL switch for a middle level, so
  moderate only removes an explicit `safe=off` (Google's own default, blurring, applies).
- bing: `adlt=strict` / `adlt=moderate`.
- duckduckgo: `kp=1` (strict) / `kp=-1` (moderate).
- youtube: the `YouTube-Restrict: Strict|Moderate` request header (Google's documented network switch).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

# www.google.com, google.de, www.google.com.vn, www.google.co.uk ... (country-code variants).
_GOOGLE = re.compile(r"^(?:www\.)?google\.(?:com|[a-z]{2}|com\.[a-z]{2}|co\.[a-z]{2})$")
# Search result and suggestion endpoints (image search is /search?tbm=isch). Static files are left alone.
_GOOGLE_PATHS = frozenset({"/", "/search", "/webhp", "/imghp", "/complete/search", "/videohp"})
_BING = frozenset({"www.bing.com", "bing.com", "cn.bing.com", "m.bing.com"})
_DUCKDUCKGO = frozenset(
    {"duckduckgo.com", "www.duckduckgo.com", "html.duckduckgo.com", "lite.duckduckgo.com", "start.duckduckgo.com"}
)
_YOUTUBE = frozenset(
    {
        "www.youtube.com",
        "youtube.com",
        "m.youtube.com",
        "music.youtube.com",
        "youtubei.googleapis.com",
        "youtube.googleapis.com",
        "www.youtube-nocookie.com",
    }
)

ENGINES = ("google", "bing", "duckduckgo", "youtube")


class SafeSearchSettings(Protocol):
    google: str
    bing: str
    duckduckgo: str
    youtube: str


@dataclass(frozen=True)
class Plan:
    """What to change on one request to force an engine's safe mode."""

    engine: str
    set_params: dict[str, str] = field(default_factory=dict)
    remove_params: dict[str, str] = field(default_factory=dict)  # name -> only when it has this value
    set_headers: dict[str, str] = field(default_factory=dict)


def engine_of(host: str) -> str | None:
    """The search engine `host` (canonical, lower case) belongs to, or None."""
    if host in _YOUTUBE:
        return "youtube"
    if host in _BING:
        return "bing"
    if host in _DUCKDUCKGO:
        return "duckduckgo"
    if host.startswith(("google.", "www.google.")) and _GOOGLE.match(host):
        return "google"
    return None


def plan(host: str, path: str, settings: SafeSearchSettings) -> Plan | None:
    """The change that forces safe mode for a request to `host` + `path`, or None (not a search)."""
    engine = engine_of(host)
    if engine is None:
        return None
    level = getattr(settings, engine, "off")
    if level not in ("strict", "moderate"):
        return None
    path = path.split("?", 1)[0]
    if engine == "youtube":
        return Plan(engine, set_headers={"YouTube-Restrict": "Strict" if level == "strict" else "Moderate"})
    if engine == "google":
        if path.rstrip("/") not in _GOOGLE_PATHS and path not in _GOOGLE_PATHS:
            return None  # static files, fonts, logging beacons: nothing to enforce
        if level == "strict":
            return Plan(engine, set_params={"safe": "active"})
        return Plan(engine, remove_params={"safe": "off"})
    if engine == "bing":
        return Plan(engine, set_params={"adlt": level})
    return Plan(engine, set_params={"kp": "1" if level == "strict" else "-1"})
