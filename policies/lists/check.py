"""Is this file a list of the format it claims? The check a fetched list passes before it replaces the old one.

The readers never fail on junk (a list from the Internet always has a few odd lines), so an upstream that
answers with an HTML error page, a binary file or a list in another format would read as an empty list
with warnings, and a category would quietly stop blocking. This says so instead, from what the reader
itself made of the file: the share of lines it could not use, and what the first bytes look like.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from classgate.policies.lists import ListData
from classgate.policies.vocabulary import ListFormat

DEFAULT_MAX_JUNK_SHARE = 0.10  # the real UT1 and hostsVN lists have none; a wrong format is close to 100%
_HEAD_BYTES = 512

WHAT_A_LINE_IS: dict[ListFormat, str] = {
    "ut1": "a domain or a host/path",
    "domains": "one domain",
    "hosts": "a hosts-file line (0.0.0.0 name)",
    "adblock": "a ||domain^ rule",
}


@dataclass(frozen=True)
class ListCheck:
    """`problem` is None for a usable list; "empty" or "format" otherwise, with a message saying why."""

    problem: Literal["empty", "format"] | None = None
    message: str = ""
    entries: int = 0


def check_list(data: ListData, fmt: ListFormat, max_junk_share: float = DEFAULT_MAX_JUNK_SHARE) -> ListCheck:
    """Check a list as read by `read_list` (its files are still on disk: their first bytes are looked at)."""
    for path in data.files:
        with open(path, "rb") as f:
            head = f.read(_HEAD_BYTES)
        if b"\0" in head:
            return ListCheck("format", f"{path.name}: binary data, not a {fmt} list")
        if head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"<":
            return ListCheck("format", f"{path.name}: an HTML or XML page, not a {fmt} list")
    entries = len(data.domains) + len(data.urls)
    lines = entries + data.junk_lines
    if data.junk_lines and data.junk_lines > max_junk_share * lines:
        return ListCheck("format", f"{data.junk_lines} of {lines} lines are not {WHAT_A_LINE_IS[fmt]} "
                                   f"(more than {max_junk_share:.0%}): not a {fmt} list", entries)
    if entries == 0:
        return ListCheck("empty", "no entries at all", 0)
    return ListCheck(None, "", entries)
