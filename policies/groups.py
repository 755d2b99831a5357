"""Groups: which client addresses belong to which group, read from YAML and resolved per request."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import NamedTuple

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
        parent = body.value.get("in")
        groups[name] = Group(name=name, networks=tuple(networks), origin=origin,
                             parent=parent.value.strip() if parent is not None else None,
                             parent_given=parent is not None, pos=body.key_pos)
    return groups


def place_school_groups(groups: dict[str, Group], problems: list[Problem]) -> None:
    """Give every group a school overlay defined its place in the tree (in place), or a problem.

    A school group belongs under the Department group whose networks hold all of its own (the most
    specific such group), or under the one it names with `in:`; under the Department's `default` when it is
    inside none. A school network that lies partly inside a Department group (or holds a Department
    network) would move part of a Department group out from under its locks: an error naming both. So is
    `in:` naming another group than the one the networks lie in: membership follows the networks."""
    department = {n: g for n, g in groups.items() if g.origin == "department"}
    for name, group in list(groups.items()):
        if group.origin != "school":
            continue
        partial = [(net, other, theirs) for net in group.networks for other in department.values()
                   for theirs in other.networks
                   if net.version == theirs.version and net.overlaps(theirs) and not _inside(net, [theirs])]
        for net, other, theirs in partial:
            problems.append(Problem.at(group.pos, f"group {name!r}: network {net} overlaps Department group "
                                                  f"{other.name!r} ({theirs}, {_where(other)}) without lying "
                                                  "inside it; a school group lies inside a Department group's "
                                                  "networks or outside all of them"))
        if partial:
            continue
        holders = [d for d in department.values()
                   if group.networks and all(_inside(n, d.networks) for n in group.networks)]
        innermost = min(holders, key=lambda d: sum(n.num_addresses for n in d.networks), default=None)
        if not group.parent_given:
            groups[name] = replace(group, parent=innermost.name if innermost else DEFAULT_GROUP)
            continue
        wanted = group.parent
        if wanted != DEFAULT_GROUP and wanted not in department:
            known = ", ".join([*sorted(department), DEFAULT_GROUP])
            problems.append(Problem.at(group.pos, f"group {name!r}: `in: {wanted}` names no Department group "
                                                  f"(known: {known})"))
        elif innermost is not None and wanted not in {d.name for d in holders}:
            problems.append(Problem.at(group.pos, f"group {name!r}: its networks lie inside Department group "
                                                  f"{innermost.name!r} ({_where(innermost)}), so it is part of "
                                                  f"that group and cannot be `in: {wanted}`"))


def _where(group: Group) -> str:
    return f"line {group.pos.line}" if group.pos else "the Department policy"


def _inside(net: IpNetwork, networks: Iterable[IpNetwork]) -> bool:
    return any(net.version == n.version and net.subnet_of(n) for n in networks)  # type: ignore[arg-type]


def group_path(groups: Mapping[str, Group], name: str) -> tuple[str, ...]:
    """`name` and the groups it is inside, innermost first (bounded: a broken tree cannot loop)."""
    path = [name]
    while len(path) <= len(groups) + 1:
        group = groups.get(path[-1])
        if group is None or group.parent is None or group.parent in path:
            break
        path.append(group.parent)
    return tuple(path)


class AddressCount(NamedTuple):
    ipv4: int  # IPv4 addresses
    ipv6_networks: int  # IPv6 networks (a /64 holds more addresses than are worth counting)

    def __str__(self) -> str:
        six = f" + {self.ipv6_networks} IPv6 network{'s' if self.ipv6_networks != 1 else ''}" \
            if self.ipv6_networks else ""
        return f"{self.ipv4:,} IPv4 address{'es' if self.ipv4 != 1 else ''}{six}"


def address_counts(groups: Mapping[str, Group]) -> dict[str, AddressCount]:
    """How many addresses each group's own networks hold (for `validate --overlay` and the sync report)."""
    return {name: AddressCount(sum(n.num_addresses for n in g.networks if n.version == 4),
                               sum(1 for n in g.networks if n.version == 6)) for name, g in groups.items()}


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
