"""`classgate class allow|block|lock|pause|list|end`: teachers' time-boxed class actions from the CLI.

For admins and scripts (teachers get the same in the web console). Every command works on the gateway's
state dir; the policy that bounds the actions is the one the gateway enforces (its last good copy), or the
files given with --policy/--overlay. Without --by the action is the admin's; with --by NAME it is made as
that teacher, within the teacher's groups.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from classgate.agent.commands.options import json_option, overlay_option, state_dir_option
from classgate.agent.commands.problems import policy_errors
from classgate.agent.teachers.accounts import AccountError, Accounts
from classgate.agent.teachers.audit import AuditError
from classgate.agent.teachers.classroom import CLI_ADMIN, ActionRefused, Actor, Classroom
from classgate.agent.teachers.enforced import NoPolicyError, enforced_policy
from classgate.policies.class_actions import ClassAction
from classgate.policies.teacher_settings import parse_duration
from classgate.policies.vocabulary import ClassActionKind
from classgate.proxy.class_store import ClassStoreError

F = TypeVar("F", bound=Callable[..., Any])

enforced_policy_option = click.option(
    "--policy",
    "policy_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The Department's policy file. Default: the policy the gateway enforces (kept in STATE_DIR/last-good).",
)


class DurationParam(click.ParamType):
    """`45m`, `2h`, `1h30m` (the spelling of the policy's teachers.max_duration)."""

    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dt.timedelta:
        if isinstance(value, dt.timedelta):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as e:
            self.fail(str(e), param, ctx)


@contextmanager
def teacher_errors() -> Iterator[None]:
    """Our exceptions as exit-1 click errors (the message says what to fix)."""
    with policy_errors("the policy is not valid"):
        try:
            yield
        except (ActionRefused, AccountError, AuditError, ClassStoreError, NoPolicyError) as exc:
            raise click.ClickException(str(exc)) from None


def gateway_options(f: F) -> F:
    """--state-dir, --policy, --overlay: where the actions live and what bounds them."""
    return state_dir_option(enforced_policy_option(overlay_option(f)))


def open_classroom(state_dir: Path, policy_path: Path | None, overlay_path: Path | None) -> Classroom:
    return Classroom(state_dir, enforced_policy(state_dir, policy_path, overlay_path))


def actor_named(state_dir: Path, name: str | None) -> Actor:
    """The teacher `--by` names (their groups bound what they may do), or the CLI's admin."""
    if name is None:
        return CLI_ADMIN
    account = Accounts(state_dir).get(name)
    if account is None:
        raise AccountError(f"no teacher {name!r}: add one with `classgate teachers add {name} --groups ...`")
    return Actor.of(account)


def describe(room: Classroom, action: ClassAction) -> str:
    until = room.local_time(action.until)
    what = "the Internet" if action.kind == "pause" else ", ".join(action.sites)
    return (f"{action.id}  {action.kind:<5}  {what}  for group {action.group}  until {until:%Y-%m-%d %H:%M} "
            f"({room.policy.timezone.key})  by {action.by}")


def _start(kind: ClassActionKind, sites: tuple[str, ...], group: str, duration: dt.timedelta | None, by: str | None,
           state_dir: Path, policy_path: Path | None, overlay_path: Path | None) -> None:
    with teacher_errors():
        room = open_classroom(state_dir, policy_path, overlay_path)
        action = room.start(actor_named(state_dir, by), kind, group, sites, duration)
    click.echo(f"started: {describe(room, action)}")


def _action_command(kind: ClassActionKind, summary: str, takes_sites: bool) -> click.Command:
    """One `classgate class KIND` command (they differ in the kind and whether they take sites)."""

    def command(group: str, duration: dt.timedelta | None, by: str | None, state_dir: Path,
                policy_path: Path | None, overlay_path: Path | None, sites: tuple[str, ...] = ()) -> None:
        _start(kind, sites, group, duration, by, state_dir, policy_path, overlay_path)

    command.__doc__ = summary
    decorated: Callable[..., Any] = command
    # Applied innermost first: --help lists them in the reverse of this order (--group first).
    for option in (
        gateway_options,
        click.option("--by", default=None, metavar="TEACHER", help="Act as this teacher (within their groups)."),
        click.option("--for", "duration", type=DurationParam(), default=None,
                     help="How long: 45m, 2h, 1h30m. Default: until the current schedule window ends, at most "
                          "the policy's teachers.max_duration."),
        click.option("--group", required=True, help="The group it applies to (and its subgroups)."),
    ):
        decorated = option(decorated)
    if takes_sites:
        decorated = click.argument("sites", nargs=-1, required=True, metavar="SITE...")(decorated)
    return click.command(kind)(decorated)


allow = _action_command("allow", "Allow sites (and their subdomains) for a group, for a while.\n\n"
                        "Refused when a Department locked rule or locked category blocks a site.", True)
block = _action_command("block", "Block sites (and their subdomains) for a group, for a while.", True)
lock = _action_command("lock", "Lock a group to a few sites for a while: everything else is blocked.", True)
pause = _action_command("pause", "Pause the Internet for a group for a while.", False)


@click.command("list")
@click.option("--by", default=None, metavar="TEACHER", help="Only the actions this teacher may see and end.")
@json_option
@gateway_options
def list_actions(by: str | None, as_json: bool, state_dir: Path, policy_path: Path | None,
                 overlay_path: Path | None) -> None:
    """The class actions in force, most restrictive first."""
    with teacher_errors():
        room = open_classroom(state_dir, policy_path, overlay_path)
        actions = room.active(actor_named(state_dir, by))
    if as_json:
        click.echo(json.dumps([a.to_json() for a in actions], ensure_ascii=False))
        return
    if not actions:
        click.echo("no class actions in force")
    for action in actions:
        click.echo(describe(room, action))


@click.command("end")
@click.argument("action_id", metavar="ID")
@click.option("--by", default=None, metavar="TEACHER", help="End it as this teacher (within their groups).")
@gateway_options
def end(action_id: str, by: str | None, state_dir: Path, policy_path: Path | None, overlay_path: Path | None) -> None:
    """End class action ID now (its id is in `classgate class list`)."""
    with teacher_errors():
        room = open_classroom(state_dir, policy_path, overlay_path)
        action = room.end(actor_named(state_dir, by), action_id)
    click.echo(f"ended: {describe(room, action)}")


@click.group("class")
def classroom() -> None:
    """Teachers' class actions: allow, block, lock to sites, pause; each for a while, within the policy."""


for _command in (allow, block, lock, pause, list_actions, end):
    classroom.add_command(_command)
