"""`classgate teachers add|list|remove|reset`: the accounts that may make class actions.

A new account (and a reset) prints a one-time password, once: only its scrypt hash is kept. The groups are
checked against the policy the gateway enforces, so a typo cannot create a teacher of no class.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import click

from classgate.agent.commands.classroom import gateway_options, teacher_errors
from classgate.agent.commands.options import json_option, state_dir_option
from classgate.agent.teachers.accounts import Account, AccountError, Accounts
from classgate.agent.teachers.audit import AuditEvent, AuditLog
from classgate.agent.teachers.enforced import enforced_policy
from classgate.agent.teachers.totp import provisioning_uri


def _groups(text: str) -> tuple[str, ...]:
    return tuple(g.strip() for g in text.split(",") if g.strip())


def _audit(state_dir: Path, event: AuditEvent, account: Account) -> None:
    AuditLog(state_dir).write(event, "admin", time.time(), teacher=account.name, groups=list(account.groups),
                              admin=account.admin)


def _terminal_qr(text: str) -> str:
    """`text` as a QR code of block characters, for the teacher's phone to scan off the admin's screen."""
    import segno

    out = io.StringIO()
    segno.make(text, error="m").terminal(out=out, compact=True)
    return out.getvalue()


def _show_password(account: Account, password: str) -> None:
    click.echo(f"teacher {account.name}: {'admin (all groups)' if account.admin else ', '.join(account.groups)}")
    click.echo(f"one-time password: {password}")
    if account.totp_secret is not None:
        uri = provisioning_uri(account.name, account.totp_secret)
        click.echo(f"TOTP secret: {account.totp_secret}")
        click.echo(f"authenticator app: {uri}")
        click.echo(_terminal_qr(uri), nl=False)
    click.echo("It is shown only now; the teacher sets their own password at the first sign-in.")


@click.command("add")
@click.argument("name")
@click.option("--groups", "groups_text", default="", metavar="G1,G2", help="The groups this teacher acts on "
              "(and their subgroups).")
@click.option("--admin", is_flag=True, help="An admin: acts on every group.")
@click.option("--totp", is_flag=True, help="Also a TOTP secret: signing in then needs the code of an "
              "authenticator app too.")
@gateway_options
def add(name: str, groups_text: str, admin: bool, totp: bool, state_dir: Path, policy_path: Path | None,
        overlay_path: Path | None) -> None:
    """Add teacher NAME and print a one-time password (and a TOTP secret with --totp)."""
    groups = _groups(groups_text)
    with teacher_errors():
        if groups:
            policy = enforced_policy(state_dir, policy_path, overlay_path)
            unknown = [g for g in groups if g not in policy.groups]
            if unknown:
                raise AccountError(f"the policy has no group {', '.join(map(repr, unknown))} (groups: "
                                   f"{', '.join(policy.groups)})")
        account, password = Accounts(state_dir).add(name, groups, admin=admin, totp=totp)
        _audit(state_dir, "account-add", account)
    _show_password(account, password)


@click.command("list")
@json_option
@state_dir_option
def list_teachers(as_json: bool, state_dir: Path) -> None:
    """The teacher accounts and their groups (never a password)."""
    with teacher_errors():
        accounts = Accounts(state_dir).list()
    if as_json:
        click.echo(json.dumps([{"name": a.name, "groups": list(a.groups), "admin": a.admin,
                                "totp": a.totp_secret is not None,
                                "must_change_password": a.must_change_password} for a in accounts]))
        return
    if not accounts:
        click.echo("no teachers yet: `classgate teachers add NAME --groups G1,G2`")
    for a in accounts:
        groups = "admin (all groups)" if a.admin else ", ".join(a.groups)
        totp = "  +TOTP" if a.totp_secret is not None else ""
        pending = "  (one-time password not changed yet)" if a.must_change_password else ""
        click.echo(f"{a.name:<24} {groups}{totp}{pending}")


@click.command("remove")
@click.argument("name")
@state_dir_option
def remove(name: str, state_dir: Path) -> None:
    """Remove teacher NAME (their actions in force run until they end)."""
    with teacher_errors():
        account = Accounts(state_dir).remove(name)
        _audit(state_dir, "account-remove", account)
    click.echo(f"removed teacher {account.name}")


@click.command("reset")
@click.argument("name")
@state_dir_option
def reset(name: str, state_dir: Path) -> None:
    """Give teacher NAME a new one-time password (the old one stops working), and a new TOTP secret if any."""
    with teacher_errors():
        account, password = Accounts(state_dir).reset(name)
        _audit(state_dir, "account-reset", account)
    _show_password(account, password)


@click.group("teachers")
def teachers() -> None:
    """Teacher accounts: who may make class actions, on which groups."""


for _command in (add, list_teachers, remove, reset):
    teachers.add_command(_command)
