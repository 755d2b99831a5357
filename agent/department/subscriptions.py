"""Which lists a Department policy subscribes to, and from where: the plan `classgate lists fetch` follows.

A source with a `url` is a subscription. A single-file source (domains, hosts, adblock) is one list: its url
is the file. A `ut1` source's url is the folder of UT1's `<list>.tar.gz` archives, and the lists fetched are
those the policy's categories include from it (`ut1/gambling` -> `gambling.tar.gz`).

With a mirror (`--mirror BASE_URL`, for a Department without Internet access) every list comes from the mirror
at the same path it has under the policy's folder: `BASE_URL/lists/hostsvn/gambling/domain.txt`, and for a ut1
list its plain files `BASE_URL/lists/ut1/gambling/domains` and `.../urls` (a copy of a fetched lists folder
served by any web server is such a mirror).

The policy is read only as far as its sources and includes: the files need not exist yet (the first fetch
creates them); the whole policy is validated after the fetch, before anything is published.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal
from urllib.parse import quote

from classgate.agent.department.errors import DepartmentError
from classgate.policies.categories import read_sources
from classgate.policies.document import load_top
from classgate.policies.errors import PolicyError, Problem
from classgate.policies.lists.read import UT1_ALIASES, UT1_FILES
from classgate.policies.model import Source
from classgate.policies.yamlsource import Val

Kind = Literal["file", "ut1_archive", "ut1_files"]


@dataclass(frozen=True)
class Download:
    """One file of a list and the address it comes from."""

    url: str
    name: str  # the file's name in the list: "domain.txt", "gambling.tar.gz", "domains"
    missing_ok: bool = False  # a ut1 list from a mirror may have only `domains` or only `urls`


@dataclass(frozen=True)
class Subscription:
    """One list to fetch: a single-file source, or one list of a ut1 source."""

    label: str  # as a category includes it: "hostsvn_gambling", "ut1/gambling"
    source: Source
    list_name: str | None  # the ut1 folder; None for a single-file source
    kind: Kind
    downloads: tuple[Download, ...]

    @property
    def target(self) -> Path:
        """The file (single-file source) or folder (ut1 list) the fetch replaces."""
        return self.source.path if self.list_name is None else self.source.path / self.list_name


def read_subscriptions(policy_path: Path, names: tuple[str, ...] = (), mirror: str | None = None
                       ) -> list[Subscription]:
    """The lists to fetch, in the policy's order: every source with a url, or only `names` ("src" or
    "src/list"). Raises PolicyError (the file's shape) or DepartmentError (a name that is no subscription)."""
    problems: list[Problem] = []
    top = load_top(policy_path, False, problems)
    if top is None or any(p.severity == "error" for p in problems):
        raise PolicyError(problems)
    base = policy_path.parent
    sources_node = top.value.get("sources")
    sources = read_sources(sources_node, base, "department", problems, require_files=False)
    if any(p.severity == "error" for p in problems):
        raise PolicyError(problems)
    declared = {name: body.value["path"].value for name, body in (sources_node.value.items() if sources_node
                                                                   else ()) if "path" in body.value}
    ut1_lists = _included_ut1_lists(top, sources)
    subscriptions = []
    for source in sources.values():
        if source.url is None:
            continue
        if source.format == "ut1":
            for list_name in ut1_lists.get(source.name, ()):
                subscriptions.append(_ut1(source, list_name, declared[source.name], mirror))
        else:
            subscriptions.append(_file(source, declared[source.name], mirror))
    return _select(subscriptions, names, sources) if names else subscriptions


def _included_ut1_lists(top: Val, sources: dict[str, Source]) -> dict[str, list[str]]:
    """{ut1 source: [list, ...]} as the categories include them, aliases read as UT1's own names."""
    lists: dict[str, dict[str, None]] = {}
    categories = top.value.get("categories")
    for body in categories.value.values() if categories else ():
        for item in body.value["include"].value if "include" in body.value else ():
            src_name, _, list_name = item.value.strip().partition("/")
            source = sources.get(src_name)
            if source is None or source.format != "ut1" or not list_name or "/" in list_name:
                continue  # the validator says what is wrong with it
            lists.setdefault(src_name, {})[UT1_ALIASES.get(list_name, list_name)] = None
    return {name: list(found) for name, found in lists.items()}


def _mirrored(mirror: str, declared: str, source: Source) -> str:
    rel = PurePosixPath(declared.replace("\\", "/"))
    if rel.is_absolute() or ".." in rel.parts:
        raise DepartmentError(f"source {source.name!r}: its path {declared!r} is not inside the policy's folder, "
                              "so it has no place on a mirror (a mirror serves the policy folder's layout)")
    return mirror.rstrip("/") + "/" + quote(rel.as_posix())


def _file(source: Source, declared: str, mirror: str | None) -> Subscription:
    assert source.url is not None
    url = _mirrored(mirror, declared, source) if mirror else source.url
    return Subscription(source.name, source, None, "file", (Download(url, source.path.name),))


def _ut1(source: Source, list_name: str, declared: str, mirror: str | None) -> Subscription:
    assert source.url is not None
    label = f"{source.name}/{list_name}"
    if mirror:
        folder = _mirrored(mirror, declared, source).rstrip("/") + "/" + quote(list_name)
        downloads = tuple(Download(f"{folder}/{f}", f, missing_ok=True) for f in UT1_FILES)
        return Subscription(label, source, list_name, "ut1_files", downloads)
    url = f"{source.url.rstrip('/')}/{quote(list_name)}.tar.gz"
    return Subscription(label, source, list_name, "ut1_archive", (Download(url, f"{list_name}.tar.gz"),))


def _select(subscriptions: list[Subscription], names: tuple[str, ...], sources: dict[str, Source]
            ) -> list[Subscription]:
    chosen: dict[str, Subscription] = {}
    for name in names:
        found = [s for s in subscriptions if name in (s.label, s.source.name)]
        if not found:
            source = sources.get(name.partition("/")[0])
            if source is not None and source.url is None:
                why = f"source {source.name!r} has no url: it is not a subscription (its lists are kept by hand)"
            elif source is not None:
                why = f"{name!r} is not a list the policy's categories include from {source.name!r}"
            else:
                near = difflib.get_close_matches(name, [s.label for s in subscriptions] + list(sources), n=1)
                why = f"no source or list {name!r} in the policy" + (f"; did you mean {near[0]!r}?" if near else "")
            raise DepartmentError(why)
        chosen.update((s.label, s) for s in found)
    return [s for s in subscriptions if s.label in chosen]
