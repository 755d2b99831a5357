"""Destination entries written in a policy (`domains:`, `urls:`, `regex:`), checked and canonicalised.

Entries are stored in the canonical form the engine compares requests on (policies.canonical), so
`WWW.Example.COM.` in a policy and `www.example.com` in a request are the same thing.
"""

from __future__ import annotations

import re

from classgate.policies.canonical import canonical_host, canonical_url
from classgate.policies.errors import Problem, UrlError
from classgate.policies.yamlsource import Val


def read_domains(node: Val | None, owner: str, problems: list[Problem]) -> tuple[str, ...]:
    """Canonical hosts, first occurrence order, duplicates dropped."""
    out: dict[str, None] = {}
    for item in node.value if node else ():
        text = item.value.strip()
        if "/" in text:
            problems.append(Problem.at(item.pos, f"{owner}: {text!r} is not a domain; put host/path entries "
                                                 "under `urls:`"))
            continue
        if text.startswith("*."):  # a common habit from other filters; the domain covers subdomains anyway
            problems.append(Problem.at(item.pos, f"{owner}: write {text[2:]!r} instead of {text!r}: a domain "
                                                 "entry already covers its subdomains"))
            continue
        try:
            out[canonical_host(text)] = None
        except UrlError as exc:
            problems.append(Problem.at(item.pos, f"{owner}: {exc}"))
    return tuple(out)


def read_urls(node: Val | None, owner: str, problems: list[Problem]) -> tuple[str, ...]:
    """`host/path` prefixes (a scheme, if written, is dropped: UT1 `urls` match any scheme)."""
    out: dict[str, None] = {}
    for item in node.value if node else ():
        text = item.value.strip()
        try:
            url = canonical_url(text)
        except UrlError as exc:
            problems.append(Problem.at(item.pos, f"{owner}: {exc}"))
            continue
        if url.query:
            problems.append(Problem.at(item.pos, f"{owner}: {text!r}: a urls entry is a host/path prefix; "
                                                 "use `regex:` to match query strings"))
            continue
        out[url.host_path] = None
    return tuple(out)


def read_regex(node: Val | None, owner: str, problems: list[Problem]) -> tuple[str, ...]:
    out: list[str] = []
    for item in node.value if node else ():
        try:
            re.compile(item.value)
        except re.error as exc:
            problems.append(Problem.at(item.pos, f"{owner}: bad regular expression {item.value!r}: {exc}"))
            continue
        out.append(item.value)
    return tuple(out)
