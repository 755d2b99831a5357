"""UTS #46 "ToASCII" with the flags the WHATWG URL Standard uses for hosts.

Python's `encodings.idna` is IDNA2003; browsers follow UTS #46 (CheckHyphens=false,
CheckBidi=true, CheckJoiners=true, UseSTD3ASCIIRules=false, Transitional=false,
VerifyDnsLength=false). The `idna` package holds the Unicode mapping table and the
Bidi/ContextJ rules; its own `encode()` is strict IDNA2008 (it refuses `a_b.com`), so we
drive its pieces with the URL Standard's flags here.
"""

from __future__ import annotations

import unicodedata

from idna import core as _idna

from classgate.policies.errors import UrlError

_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})


def domain_to_ascii(domain: str) -> str:
    """The WHATWG "domain to ASCII" of `domain` (already percent-decoded); raises UrlError."""
    if domain.isascii():
        # The URL Standard (UTS #46 with IgnoreInvalidPunycode) leaves ASCII input as it is, bar
        # case: `xn--a` or `ab--c` pass through unchanged (see WPT toascii.json).
        return domain.lower()
    try:
        mapped = _idna.uts46_remap(domain, std3_rules=False)
    except _idna.IDNAError as exc:
        raise UrlError(str(exc)) from None
    labels = mapped.translate(_DOTS).split(".")
    unicode_labels = [label_to_unicode(label) for label in labels]
    bidi_domain = any(_has_rtl(label) for label in unicode_labels)
    out = []
    for label, original in zip(unicode_labels, labels):
        _validate(label, from_punycode=original.startswith("xn--"), bidi_domain=bidi_domain)
        out.append(label if label.isascii() else "xn--" + label.encode("punycode").decode("ascii"))
    return ".".join(out)


def label_to_unicode(label: str) -> str:
    """A label's Unicode form (an A-label decoded, any other as it is); raises UrlError for an invalid A-label."""
    if not label.startswith("xn--"):
        return label
    body = label[4:]
    if not body or not body.isascii():
        raise UrlError(f"invalid punycode label {label!r}")
    try:
        decoded = body.encode("ascii").decode("punycode")
    except (UnicodeError, ValueError):
        raise UrlError(f"invalid punycode label {label!r}") from None
    if decoded.isascii():
        # UTS #46 (15.1): an A-label that decodes to pure ASCII is not a real IDN.
        raise UrlError(f"punycode label {label!r} decodes to ASCII")
    return decoded


def _validate(label: str, *, from_punycode: bool, bidi_domain: bool) -> None:
    if not label:
        return
    if from_punycode:
        if unicodedata.normalize("NFC", label) != label:
            raise UrlError(f"label {label!r} is not in NFC")
        if label.startswith("xn--"):
            raise UrlError(f"label {label!r} starts with xn--")
        if "." in label:
            raise UrlError(f"label {label!r} contains a dot")
        # Every code point must be valid (or a deviation) as it stands: then the UTS #46 mapping leaves the
        # label unchanged; a mapped, ignored or disallowed one changes it or raises.
        try:
            unchanged = _idna.uts46_remap(label, std3_rules=False) == label
        except _idna.IDNAError:
            unchanged = False
        if not unchanged:
            raise UrlError(f"label {label!r} has code points not allowed in a punycode label")
    if label.isascii():
        return
    if unicodedata.category(label[0])[0] == "M":
        raise UrlError(f"label {label!r} starts with a combining mark")
    for pos, ch in enumerate(label):
        if ch in "\u200c\u200d":
            try:
                ok = _idna.valid_contextj(label, pos)
            except ValueError:
                ok = False
            if not ok:
                raise UrlError(f"joiner at position {pos} of {label!r} not allowed here")
    if bidi_domain:
        try:
            _idna.check_bidi(label, check_ltr=True)
        except _idna.IDNAError as exc:
            raise UrlError(f"bidi rule: {exc}") from None


def _has_rtl(label: str) -> bool:
    return any(unicodedata.bidirectional(ch) in ("R", "AL", "AN") for ch in label)
