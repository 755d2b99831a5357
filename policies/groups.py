"""Groups: which client addresses belong to which group, read from YAML and resolved per request."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

from classgate.policies.errors import Problem
from classgate.policies.model import DEFAULT_GROUP, Group, IpNetwork, Origin
from classgate.policies.yamlsource import Val

# A gateway sees a few thousand distinct clients; past this many cached addresses something is odd
# (a scan, spoofed sources), so the cache is dropped rather than allowed to grow without bound.
_CACHE_LIMIT = 65536


def parse_network(text: str) -> IpNetwork:
    """A CIDR (or a single address) as a network; raises ValueError with an admin-readable reason."""
    try:
        return ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as exc:
        try:
            loose = ipaddress.ip_network(text.strip(), strict=False)
        except ValueError:
            raise ValueError(f"{text!r} is not a network (write it as a CIDR, e.g. 10.10.0.0/16)") from exc
        raise ValueError(f"{text!r} has host bits set; did you mean {loose}?") from exc


def read_groups(node: Val | None, origin: Origin, problems: list[Problem]) -> dict[str, Group]:
    """The `groups:` section (already shape-checked) as Group objects; bad networks become problems."""
    groups: dict[str, Group] = {}
    if node is None:
        return groups
    for name, body in node.value.items():
        if name == DEFAULT_GROUP:
            problems.append(Problem.at(body.key_pos, f"group name {DEFAULT_GROUP!r} is reserved for "
                                                     "clients in no group; choose another name"))
            continue
        networks: list[IpNetwork] = []
        networks_node = body.value.get("networks")
        for item in networks_node.value if networks_node else ():
            try:
                networks.append(parse_network(item.value))
            except ValueError as exc:
                problems.append(Problem.at(item.pos, f"group {name!r}: {exc}"))
        groups[name] = Group(name=name, networks=tuple(networks), origin=origin, pos=body.key_pos)
    return groups


def check_overlaps(groups: Mapping[str, Group], problems: list[Problem]) -> None:
    """The same network in two groups would make the group of a client depend on file order."""
    seen: dict[IpNetwork, str] = {}
    for group in groups.values():
        for net in group.networks:
            other = seen.get(net)
            if other is not None and other != group.name:
                problems.append(Problem.at(group.pos, f"network {net} is in both group {other!r} and "
                                                      f"group {group.name!r}; a client can be in one group only"))
            seen[net] = group.name


class GroupResolver:
    """Maps a client address to its group: the most specific network wins; otherwise "default"."""

    def __init__(self, groups: Iterable[Group] | Mapping[str, Group]):
        items = groups.values() if isinstance(groups, Mapping) else groups
        # (version, prefixlen) -> {network int: group}; probed longest prefix first.
        tables: dict[tuple[int, int], dict[int, str]] = {}
        for group in items:
            for net in group.networks:
                tables.setdefault((net.version, net.prefixlen), {})[int(net.network_address)] = group.name
        self._v4 = [(32 - plen, table) for (ver, plen), table in sorted(tables.items(), key=lambda kv: -kv[0][1])
                    if ver == 4]
        self._v6 = [(128 - plen, table) for (ver, plen), table in sorted(tables.items(), key=lambda kv: -kv[0][1])
                    if ver == 6]
        self._cache: dict[str, str] = {}

    def group_of(self, ip: str | None) -> str:
        """The group of a client address (str, as the proxy sees it); never raises."""
        if ip is None:
            return DEFAULT_GROUP
        cached = self._cache.get(ip)
        if cached is not None:
            return cached
        group = self._lookup(ip)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[ip] = group
        return group

    def _lookup(self, ip: str) -> str:
        text = ip.strip()
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1]
        try:
            addr = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            return DEFAULT_GROUP
        # mitmproxy on a dual-stack socket reports IPv4 clients as ::ffff:10.10.1.2.
        if addr.version == 6 and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        value = int(addr)
        for shift, table in self._v4 if addr.version == 4 else self._v6:
            group = table.get((value >> shift) << shift)
            if group is not None:
                return group
        return DEFAULT_GROUP
