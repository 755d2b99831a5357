"""Line grammars of the non-UT1 formats: hosts files and Adblock-style domain rules."""

from __future__ import annotations

import ipaddress
import re

# Names every hosts file maps to itself; they are not destinations to filter.
_HOSTS_SELF = frozenset({"localhost", "localhost.localdomain", "local", "broadcasthost", "ip6-localhost",
                         "ip6-loopback", "ip6-localnet", "ip6-mcastprefix", "ip6-allnodes", "ip6-allrouters",
                         "ip6-allhosts", "0.0.0.0"})
_ADBLOCK_DOMAIN = re.compile(r"\|\|([^\s/^$|*]+)\^?(?:\|)?")
_ADBLOCK_URL = re.compile(r"\|\|([^\s/^$|*]+/[^\s^$|*]*)(?:\^|\|)?")


def hosts_tokens(line: str) -> list[str]:
    """Host names of one /etc/hosts line ("0.0.0.0 a.com b.com # note"); [] for blank and comment lines;
    [""] (junk) for a line whose first field is not an IP address."""
    fields = line.split("#", 1)[0].split()
    if not fields:
        return []
    if len(fields) == 1:
        return [fields[0]]  # bare domain lines are common in "hosts-style" lists
    try:
        ipaddress.ip_address(fields[0].split("%", 1)[0])
    except ValueError:
        return [""]
    return [f for f in fields[1:] if f.lower() not in _HOSTS_SELF]


def adblock_token(line: str) -> tuple[str, str]:
    """("domain", host) for `||host^`, ("url", host/path) for `||host/path`, ("skip", "") for comments and
    headers, ("junk", why) for rules a domain filter cannot honour (exceptions, options, wildcards)."""
    text = line.strip()
    if not text or text.startswith(("!", "#", "[")):
        return ("skip", "")
    if text.startswith("@@"):
        return ("junk", f"exception rules are not supported (use an allow rule): {text[:80]!r}")
    if "$" in text:
        return ("junk", f"rule options are not supported: {text[:80]!r}")
    m = _ADBLOCK_DOMAIN.fullmatch(text)
    if m:
        return ("domain", m.group(1))
    m = _ADBLOCK_URL.fullmatch(text)
    if m:
        return ("url", m.group(1))
    return ("junk", f"not a ||domain^ rule: {text[:80]!r}")
