"""Sources (list folders and files on disk) and categories (lists included from them plus inline entries)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path

from classgate.policies.destinations import read_domains, read_urls
from classgate.policies.errors import Problem
from classgate.policies.lists.read import UT1_ALIASES, UT1_FILES
from classgate.policies.model import Category, Origin, Source
from classgate.policies.yamlsource import Val


def _tip(name: str, known: list[str]) -> str:
    near = difflib.get_close_matches(name, known, n=1)
    if near:
        return f"; did you mean {near[0]!r}?"
    return f" (known: {', '.join(sorted(known))})" if known else " (none are defined)"


def read_sources(node: Val | None, base: Path, origin: Origin, problems: list[Problem], *,
                 require_files: bool = True) -> dict[str, Source]:
    """`sources:`; paths are resolved against the folder of the file that declares them and must exist
    (unless `require_files` is False: `classgate lists fetch` reads the sources before their first fetch)."""
    sources: dict[str, Source] = {}
    for name, body in (node.value.items() if node else ()):
        fmt, path_node, url_node = body.value.get("format"), body.value.get("path"), body.value.get("url")
        if fmt is None or path_node is None:
            continue  # missing keys already reported by the shape check
        if url_node is not None and origin == "school":
            # A gateway never fetches a third-party list (it could not check it, and 3,000 gateways
            # would each call the upstream): only the Department's `lists fetch` reads `url`.
            problems.append(Problem.at(url_node.pos, f"source {name!r}: `url` is for the Department's `classgate "
                                                     "lists fetch`; a gateway never downloads lists: put the "
                                                     "file next to the overlay and drop `url`"))
        path = (base / path_node.value).resolve()
        if require_files and fmt.value == "ut1" and not path.is_dir():
            problems.append(Problem.at(path_node.pos, f"source {name!r}: {path} is not a folder (a ut1 source "
                                                      "is a folder of <list>/domains and <list>/urls)"
                                                      + _fetch_tip(url_node)))
            continue
        if require_files and fmt.value != "ut1" and not path.is_file():
            problems.append(Problem.at(path_node.pos, f"source {name!r}: no such file {path}"
                                                      + _fetch_tip(url_node)))
            continue
        sources[name] = Source(name=name, format=fmt.value, path=path, url=url_node.value if url_node else None,
                               origin=origin, pos=body.key_pos)
    return sources


def _fetch_tip(url_node: Val | None) -> str:
    return "; it has a url: download it with `classgate lists fetch --policy FILE`" if url_node else ""


def resolve_include(text: str, sources: Mapping[str, Source]) -> str:
    """The include as the engine reads it ("src/list" or "src"); raises ValueError saying what is wrong."""
    src_name, slash, list_name = text.partition("/")
    source = sources.get(src_name)
    if source is None:
        raise ValueError(f"unknown source {src_name!r}{_tip(src_name, list(sources))}")
    if source.format != "ut1":
        if slash:
            raise ValueError(f"source {src_name!r} is a single {source.format} file: include it as {src_name!r}")
        return src_name
    if not list_name or "/" in list_name or list_name in (".", ".."):
        raise ValueError(f"name one list of the ut1 source: {src_name}/<list>, e.g. {src_name}/gambling")
    for candidate in (list_name, UT1_ALIASES.get(list_name)):
        if candidate and any((source.path / candidate / f).is_file() for f in UT1_FILES):
            return f"{src_name}/{candidate}"
    folders = [p.name for p in source.path.iterdir() if p.is_dir()] if source.path.is_dir() else []
    raise ValueError(f"list {list_name!r} not found in source {src_name!r}: {source.path / list_name} has no "
                     f"domains or urls file{_tip(list_name, folders + list(UT1_ALIASES))}")


def read_categories(node: Val | None, sources: Mapping[str, Source], origin: Origin,
                    problems: list[Problem]) -> dict[str, Category]:
    categories: dict[str, Category] = {}
    for name, body in (node.value.items() if node else ()):
        fields = body.value
        owner = f"category {name!r}"
        include: list[str] = []
        for item in fields["include"].value if "include" in fields else ():
            try:
                include.append(resolve_include(item.value.strip(), sources))
            except ValueError as exc:
                problems.append(Problem.at(item.pos, f"{owner}: {exc}"))
        locked = fields.get("locked")
        categories[name] = Category(
            name=name,
            include=tuple(dict.fromkeys(include)),
            domains=read_domains(fields.get("domains"), owner, problems),
            urls=read_urls(fields.get("urls"), owner, problems),
            locked=bool(locked and locked.value),
            origin=origin,
            pos=body.key_pos,
        )
    return categories
