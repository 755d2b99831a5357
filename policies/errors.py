"""Errors of the policy language: every problem names the file, line and column it is about."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Position:
    """Where something stands in a policy or list file (1-based line and column)."""

    file: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong (or worth a warning) in a policy, said so that an admin can fix it."""

    file: str
    line: int
    col: int
    message: str
    severity: Severity = "error"

    @classmethod
    def at(cls, pos: Position | None, message: str, severity: Severity = "error") -> Problem:
        if pos is None:
            return cls("<policy>", 0, 0, message, severity)
        return cls(pos.file, pos.line, pos.col, message, severity)

    def __str__(self) -> str:
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{self.file}:{self.line}:{self.col}: {prefix}{self.message}"


class PolicyError(Exception):
    """A policy (or overlay, or list) that cannot be used; `problems` says every reason."""

    def __init__(self, problems: list[Problem]):
        self.problems = [p for p in problems if p.severity == "error"] or list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class UrlError(ValueError):
    """A URL or host that cannot be understood; deciding on it yields a block, never an allow."""
