"""The settings the gateway's resolver and the TLS gate's ECH check read: the `dns` section and the ECH keys of
`tls` (`tls.ech`, `tls.ech_fronts`).

    dns: {block_answer: gateway}     # or nxdomain
    tls: {ech: refuse, ech_fronts: [ech.example-cdn.net]}

A school overlay may choose the block answer (both block), add ECH fronts, and turn `tls.ech` from allow to
refuse; it cannot allow what the Department refuses.
"""

from __future__ import annotations

from dataclasses import replace

from classgate.policies.canonical import canonical_host
from classgate.policies.errors import Problem, UrlError
from classgate.policies.model import ECH_HANDLINGS, DnsSettings, TlsSettings
from classgate.policies.yamlsource import Val

NO_DNS = DnsSettings()


def read_dns(node: Val | None, base: DnsSettings = NO_DNS) -> DnsSettings:
    """The `dns` section over `base` (the Department's, when reading an overlay)."""
    if node is None:
        return base
    fields = node.value
    return replace(base, block_answer=fields["block_answer"].value) if "block_answer" in fields else base


def read_ech(node: Val | None, tls: TlsSettings, base: TlsSettings, problems: list[Problem], *,
             overlay: bool = False) -> TlsSettings:
    """`tls` (as the rest of the section was read) with the ECH keys of `node` over `base`'s.

    `base` is the Department's `tls` when reading an overlay (TlsSettings() for the Department itself): its
    ECH setting and fronts carry over, since the rest of the section is read afresh."""
    fields = node.value if node is not None else {}
    ech = base.ech
    if "ech" in fields:
        wanted = fields["ech"].value
        if overlay and ECH_HANDLINGS.index(wanted) > ECH_HANDLINGS.index(base.ech):
            problems.append(Problem.at(fields["ech"].pos, f"tls.ech: a school overlay cannot loosen the "
                                                          f"Department's {base.ech!r} to {wanted!r}"))
        else:
            ech = wanted
    fronts = set(base.ech_fronts)
    for item in fields["ech_fronts"].value if "ech_fronts" in fields else ():
        try:
            fronts.add(canonical_host(str(item.value).strip()))
        except UrlError as e:
            problems.append(Problem.at(item.pos, f"tls.ech_fronts: {item.value!r} is not a host name ({e}); "
                                                 "write the outer name as it appears in the SNI, e.g. "
                                                 "cloudflare-ech.com"))
    return replace(tls, ech=ech, ech_fronts=frozenset(fronts))
