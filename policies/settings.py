"""The small settings sections: `safe_search`, `tls` and `block_page`."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

from classgate.policies.errors import Problem
from classgate.policies.keys import SAFE_SEARCH_ENGINES, SAFE_SEARCH_LEVELS
from classgate.policies.model import BlockPageSettings, LocalService, SafeSearchSettings, TlsSettings
from classgate.policies.yamlsource import Val

# The types' defaults (frozen, so one shared instance is safe).
NO_SAFE_SEARCH, NO_TLS, DEFAULT_BLOCK_PAGE = SafeSearchSettings(), TlsSettings(), BlockPageSettings()


def read_safe_search(node: Val | None, base: SafeSearchSettings = NO_SAFE_SEARCH) -> SafeSearchSettings:
    if node is None:
        return base
    fields = node.value
    levels = {e: fields[e].value for e in SAFE_SEARCH_ENGINES if e in fields}
    locked = bool(fields["locked"].value) if "locked" in fields else base.locked
    return replace(base, **levels, locked=locked, pos=node.key_pos or node.pos)


def tighten_safe_search(department: SafeSearchSettings, school: Val, problems: list[Problem]) -> SafeSearchSettings:
    """The school's levels over the Department's; lowering a locked level is an error."""
    result = department
    for engine in SAFE_SEARCH_ENGINES:
        node = school.value.get(engine)
        if node is None:
            continue
        ours, theirs = getattr(department, engine), node.value
        if department.locked and SAFE_SEARCH_LEVELS.index(theirs) < SAFE_SEARCH_LEVELS.index(ours):
            problems.append(Problem.at(node.pos, f"safe_search is locked by the Department: {engine} cannot "
                                                 f"be lowered from {ours} to {theirs}"))
            continue
        result = replace(result, **{engine: theirs})
    return result


def read_tls(node: Val | None, base: TlsSettings = NO_TLS) -> TlsSettings:
    if node is None:
        return base
    fields = node.value

    def names(key: str) -> frozenset[str]:
        return frozenset(item.value.strip() for item in fields[key].value) if key in fields else frozenset()

    # An overlay adds to both lists: more devices inspected by the school's choice, more categories private.
    return TlsSettings(inspect_groups=base.inspect_groups | names("inspect_groups"),
                       never_decrypt=base.never_decrypt | names("never_decrypt"))


def tls_positions(node: Val | None) -> dict[str, list[Val]]:
    """The `tls` entries with positions, for reference checks."""
    if node is None:
        return {}
    return {k: list(v.value) for k, v in node.value.items()}


def read_local_services(node: Val | None, problems: list[Problem],
                        base: tuple[LocalService, ...] = ()) -> tuple[LocalService, ...]:
    """`local_services` entries: "10.10.0.1", "10.10.0.1:631", "[fd00::1]:443", "10.10.0.0/24"; an overlay adds."""
    out = list(base)
    for item in node.value if node else ():
        service = _local_service(item.value.strip())
        if service is None:
            problems.append(Problem.at(item.pos, f"local_services: {item.value!r} is not an address of the "
                                                 "gateway; write IP, IP:PORT, [IPv6]:PORT or a network (CIDR)"))
            continue
        out.append(replace(service, pos=item.pos))
    return tuple(out)


def _local_service(text: str) -> LocalService | None:
    host, port = text, None
    if text.startswith("["):
        inner, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            return None
        host, port_text = inner, rest[1:]
        if rest and not port_text.isdigit():
            return None
        port = int(port_text) if port_text else None
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        if not port_text.isdigit():
            return None
        port = int(port_text)
    if port is not None and not 0 < port <= 65535:
        return None
    try:
        network = ipaddress.ip_network(host, strict=False)
    except ValueError:
        return None
    return LocalService(network, port)


def read_block_page(node: Val | None, base: BlockPageSettings = DEFAULT_BLOCK_PAGE) -> BlockPageSettings:
    if node is None:
        return base
    fields = node.value
    return BlockPageSettings(contact=fields["contact"].value if "contact" in fields else base.contact,
                             language=fields["language"].value if "language" in fields else base.language)
