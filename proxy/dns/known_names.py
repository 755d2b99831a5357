"""Names the gateway's resolver answers by its own rule, whatever the policy says.

- Firefox's canary domain: NXDOMAIN tells Firefox the network filters DNS, so it keeps its automatic DNS over
  HTTPS off (https://support.mozilla.org/kb/canary-domain-use-application-dnsnet).
- iCloud Private Relay: NXDOMAIN for `mask.icloud.com` and `mask-h2.icloud.com` is how Apple documents that a
  network turns it off ("Prepare your network or web server for iCloud Private Relay"); the device says so to
  its user, and its traffic stays on the network, where it is filtered.
- The encrypted-DNS resolvers that browsers and operating systems offer in their settings or upgrade to on
  their own (Chrome's and Edge's auto-upgrade table, Firefox's provider list, Windows' and Android's): the block
  answer, so a device set to use one cannot reach it by name and falls back to the network's resolver. Each
  entry covers its subdomains. Every entry is in at least one published DoH list (tests/proxy/test_dns_blocking
  checks them against ../shared/data/doh); the lists themselves (thousands of names) belong in the policy,
  e.g. UT1's `doh` category, where a school can see and change them.
"""

from __future__ import annotations

from typing import Final

CANARY: Final = frozenset({"use-application-dns.net"})
PRIVATE_RELAY: Final = frozenset({"mask.icloud.com", "mask-h2.icloud.com"})

ENCRYPTED_DNS: Final = frozenset({
    # Cloudflare (1.1.1.1; Firefox's and Chrome's own entries are under it)
    "cloudflare-dns.com", "one.one.one.one",
    # Google Public DNS
    "dns.google", "dns.google.com",
    # Quad9
    "dns.quad9.net", "dns9.quad9.net", "dns10.quad9.net", "dns11.quad9.net",
    # Cisco OpenDNS
    "doh.opendns.com", "doh.familyshield.opendns.com",
    # NextDNS (Firefox's provider list)
    "dns.nextdns.io",
    # Comcast (Firefox), CIRA Canadian Shield (Firefox), Wikimedia (Firefox)
    "doh.xfinity.com", "private.canadianshield.cira.ca", "protected.canadianshield.cira.ca",
    "family.canadianshield.cira.ca", "wikimedia-dns.org",
    # CleanBrowsing, AdGuard, Control D, Mullvad, DNS.SB, LibreDNS
    "doh.cleanbrowsing.org", "dns.adguard.com", "dns.adguard-dns.com", "dns-family.adguard.com",
    "dns-unfiltered.adguard.com", "dns.controld.com", "freedns.controld.com", "doh.mullvad.net",
    "dns.mullvad.net", "doh.dns.sb", "doh.libredns.gr",
    # Alibaba, DNSPod, 360, TWNIC: the defaults of browsers sold in Asia
    "dns.alidns.com", "doh.pub", "doh.360.cn", "dns.twnic.tw",
})


def under(name: str, zones: frozenset[str]) -> bool:
    """True when `name` (lower case, no trailing dot) is one of `zones` or a subdomain of one."""
    if name in zones:
        return True
    dot = name.find(".")
    while dot >= 0:
        if name[dot + 1:] in zones:
            return True
        dot = name.find(".", dot + 1)
    return False
