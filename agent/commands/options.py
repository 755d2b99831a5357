"""Options shared by several commands, declared once (pip-tools' scripts/options.py pattern)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from classgate.proxy.address import Address, parse_address

policy_option = click.option(
    "--policy",
    "policy_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The Department's policy file (YAML).",
)
overlay_option = click.option(
    "--overlay",
    "overlay_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The school's overlay file (YAML, `overlay: true`).",
)
state_dir_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".classgate"),
    show_default=True,
    help="Where classgate keeps its CA, compiled lists and synced bundles.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


def renamed(old: str, new: str, **option: Any) -> Callable[[F], F]:
    """The old spelling of option `new`, still accepted (hidden) for a release, with a warning.

    The command reads it with `old_spelling(ctx, new)` when the new one was not given."""

    def remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is not None and value != ():
            click.echo(f"warning: {old} is now {new}; the old spelling works until the next release",
                       err=True)
            ctx.meta.setdefault(_RENAMED, {})[new] = value
        return value

    return click.option(old, hidden=True, expose_value=False, callback=remember, default=None, **option)


def old_spelling(ctx: click.Context, new: str) -> Any:
    """What the old spelling of `new` was given as, or None."""
    return ctx.meta.get(_RENAMED, {}).get(new)


_RENAMED = "classgate.renamed"
F = TypeVar("F", bound=Callable[..., Any])


class Interval(click.ParamType):
    """`MIN-MAX` seconds (or one number): the one spelling of a polling interval on every command."""

    name = "MIN-MAX"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[float, float]:
        if isinstance(value, tuple):
            return value
        low, sep, high = str(value).partition("-")
        try:
            interval = (float(low), float(high if sep else low))
        except ValueError:
            self.fail(f"{value!r}: expected MIN-MAX seconds, e.g. 300-900", param, ctx)
        if not 0 < interval[0] <= interval[1]:
            self.fail(f"{value!r}: need 0 < MIN <= MAX", param, ctx)
        return interval


class AddressParam(click.ParamType):
    """HOST:PORT (or [IPv6]:PORT): the one spelling of an address on every command."""

    name = "HOST:PORT"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Address:
        if isinstance(value, Address):
            return value
        try:
            return parse_address(str(value))
        except ValueError as e:
            self.fail(str(e), param, ctx)


def state_or_cache_dir(ctx: click.Context, state_dir: Path | None) -> Path | None:
    """The compiled-list cache: STATE_DIR/compiled (or the old `--cache-dir` as given); None: no cache."""
    old = old_spelling(ctx, "--state-dir")
    if state_dir is None and old is not None:
        return Path(old)
    return state_dir / "compiled" if state_dir is not None else None


cache_state_dir_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep compiled lists in STATE_DIR/compiled and reuse them while the lists are unchanged "
         "(the gateway's --state-dir, or any folder).",
)
