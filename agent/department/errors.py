"""Errors of the Department side; the CLI turns them into click errors."""

from __future__ import annotations


class DepartmentError(Exception):
    """The Department repository cannot do what was asked (missing key, invalid policy, bad layout...)."""

    def __init__(self, message: str, problems: list[str] | None = None):
        self.problems = list(problems or [])
        super().__init__(message)

    def __str__(self) -> str:
        text = super().__str__()
        if self.problems:
            text += "\n" + "\n".join(f"  {p}" for p in self.problems)
        return text
