"""Turning the library's PolicyError into a click error at the CLI boundary (exit 1, no traceback)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import click

from classgate.policies.errors import PolicyError, Problem


class PolicyProblems(click.ClickException):
    """Prints every problem on its own `file:line:col: message` line, so editors and CI can jump to it."""

    def __init__(self, problems: list[Problem], what: str = "the policy is not valid"):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems) or what)
        self.what = what

    def show(self, file: IO[Any] | None = None) -> None:
        for problem in self.problems:
            click.echo(str(problem), err=True, file=file)
        n = sum(1 for p in self.problems if p.severity == "error")
        click.echo(f"error: {self.what} ({n} problem{'s' if n != 1 else ''})", err=True, file=file)


@contextmanager
def policy_errors(what: str = "the policy is not valid") -> Iterator[None]:
    """Within the block, PolicyError (and an unreadable file) becomes an exit-1 click error."""
    try:
        yield
    except PolicyError as exc:
        raise PolicyProblems(exc.problems, what) from None
    except OSError as exc:  # e.g. a list file vanishing between validation and compilation
        raise click.ClickException(f"{what}: {exc}") from None


def print_warnings(warnings: list[Problem]) -> None:
    for warning in warnings:
        click.echo(str(warning), err=True)
