"""Readers for the list formats a source can have: UT1 folders, plain domain files, hosts files, Adblock rules.

Every reader returns a `ListData`: canonical domains, canonical `host/path` URL prefixes, and the junk lines
it skipped as warning Problems (file:line). Junk is never fatal: a list from the Internet always has some.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from classgate.policies.errors import Problem

# Part of the compiled-index cache key: bump when a reader's output changes, so no index built by an older
# reader is ever reused.
READER_VERSION = 2  # 2: the index records its longest URL entry (url_tail_max)
MAX_WARNINGS_PER_FILE = 20  # beyond this one summary line: a broken 5M-line file must not flood the log


@dataclass
class ListData:
    """One list ("ut1/gambling", "myblock") as read from disk, in canonical form."""

    name: str
    domains: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)  # "host/path" (path lower-cased), UT1 `urls` semantics
    junk_lines: int = 0
    problems: list[Problem] = field(default_factory=list)
    files: tuple[Path, ...] = ()

    def junk(self, file: Path, line: int, message: str) -> None:
        """Count a skipped line; report the first few of each file with their position."""
        self.junk_lines += 1
        shown = sum(1 for p in self.problems if p.file == str(file))
        if shown < MAX_WARNINGS_PER_FILE:
            self.problems.append(Problem(str(file), line, 1, message, "warning"))

    def close_file(self, file: Path, junk_before: int) -> None:
        """After a file: say how many junk lines were not shown one by one."""
        hidden = self.junk_lines - junk_before - MAX_WARNINGS_PER_FILE
        if hidden > 0:
            self.problems.append(Problem(str(file), 0, 0, f"{hidden} more junk lines skipped", "warning"))


from classgate.policies.lists.read import list_files, read_list

__all__ = ["MAX_WARNINGS_PER_FILE", "READER_VERSION", "ListData", "list_files", "read_list"]
