"""`classgate validate` and `classgate check`: is this policy right, and what would it decide, and why."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import sys
from pathlib import Path
from typing import Any, TextIO

import click

from classgate.agent.commands.options import (
    cache_state_dir_option,
    json_option,
    overlay_option,
    renamed,
    state_or_cache_dir,
)
from classgate.agent.commands.problems import policy_errors, print_warnings
from classgate.policies import Decision, Policy
from classgate.policies.class_actions import ClassAction, ClassActions
from classgate.policies.errors import Problem

AT_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S")


def _compile(policy_path: Path, overlay_path: Path | None, cache_dir: Path | None) -> tuple[Policy, list[Problem]]:
    """The compiled policy and every warning (the document's and the lists'), without duplicates."""
    from classgate.policies.document import read_document
    from classgate.policies.engine import compile_policy

    with policy_errors():
        doc = read_document(policy_path, overlay_path)
        policy = compile_policy(doc, cache_dir=cache_dir)
    warnings = list(dict.fromkeys([*doc.warnings, *getattr(policy, "warnings", [])]))
    return policy, warnings


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@overlay_option
@cache_state_dir_option
@renamed("--cache-dir", "--state-dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--series", is_flag=True, help="Also print how many metric series a gateway with this policy "
                                             "exports (for sizing the Department's Prometheus).")
@click.option("--schools", type=click.IntRange(min=1), default=3000, show_default=True,
              help="With --series: how many gateways the Department's store holds.")
@click.pass_context
def validate(ctx: click.Context, file: Path, overlay_path: Path | None, state_dir: Path | None, series: bool,
             schools: int) -> None:
    """Check a policy FILE (and a school overlay) and compile its lists.

    Exit 0 when it can be used (warnings are printed); exit 1 with every problem as file:line:col.
    """
    policy, warnings = _compile(file, overlay_path, state_or_cache_dir(ctx, state_dir))
    print_warnings(warnings)
    stats = policy.stats
    name = policy.name + (f" + {overlay_path.name}" if overlay_path else "")
    click.echo(f"ok: {name}: {stats.rules} rules, {stats.categories} categories, "
               f"{stats.list_entries} list entries, {len(warnings)} warning{'s' if len(warnings) != 1 else ''}"
               f" (version {policy.version})")
    if overlay_path is not None:
        _print_groups(policy)
    if series:
        _print_series(policy, schools)


def _print_groups(policy: Policy) -> None:
    """Which groups the school's networks fill, and where in the tree its own groups sit (no addresses)."""
    from classgate.policies.groups import address_counts, group_path

    groups = policy.document.groups
    counts = address_counts(groups)
    click.echo("groups (\"a > b\": the school's group b is part of the Department's a, and a's rules cover it):")
    for name, group in groups.items():
        path = " > ".join(reversed(group_path(groups, name)))
        who = "Department" if group.origin == "department" else "school"
        click.echo(f"  {path:<32} {who:<11} {counts[name]}")

def _print_series(policy: Policy, schools: int) -> None:
    from classgate.metrics.cardinality import max_series, typical_series
    from classgate.proxy.metric_labels import METRIC_LABELS

    categories, groups = len(policy.categories), len(policy.groups) - 1  # groups without "default"
    bound = max_series(METRIC_LABELS, categories, groups)
    typical = typical_series(METRIC_LABELS, categories, groups)
    click.echo(f"metric series: {categories} categories, {groups} groups (besides uncategorized and default)")
    for name, count in bound.items():
        click.echo(f"  {name:<42} <= {count}")
    total = sum(bound.values())
    click.echo(f"  {'upper bound per gateway':<42}    {total}")
    click.echo(f"  {'typical, forwarded to the Department':<42}  ~ {typical}")
    click.echo(f"  {schools} schools: typical ~ {typical * schools:,}, upper bound {total * schools:,}")


def _client(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(ipaddress.ip_address(value.strip().strip("[]")))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an IP address", param_hint="--client") from None


def _at(value: str | None) -> dt.datetime | None:
    """The naive local time; the policy's zone is attached once the policy is loaded."""
    if value is None:
        return None
    for fmt in AT_FORMATS:
        try:
            return dt.datetime.strptime(value.strip(), fmt)
        except ValueError:
            continue
    raise click.BadParameter(f"{value!r} is not a local time; write \"YYYY-MM-DD HH:MM\"", param_hint="--at")


def decision_json(decision: Decision, client: str | None, at: dt.datetime | None) -> dict[str, Any]:
    return {
        "url": decision.url,
        "host": decision.host,
        "action": decision.action,
        "rule": decision.rule,
        "tier": decision.tier,
        "group": decision.group,
        "categories": list(decision.categories),
        "schedules": list(decision.schedules),
        "matched": [{"category": m.category, "source": m.source, "entry": m.entry} for m in decision.matched],
        "client": client,
        "at": at.isoformat() if at else None,
        "error": decision.error,
    }


def _class_actions(state_dir: Path | None) -> ClassActions:
    """The teachers' class actions kept in the gateway's state dir (none without one)."""
    if state_dir is None:
        return ClassActions()
    from classgate.proxy.class_store import FILE, ClassStoreError, read_actions

    try:
        return read_actions(state_dir / FILE)
    except ClassStoreError as exc:
        raise click.ClickException(str(exc)) from None


def _action_json(action: ClassAction | None, policy: Policy) -> dict[str, Any] | None:
    if action is None:
        return None
    return {"id": action.id, "kind": action.kind, "group": action.group, "by": action.by,
            "from": dt.datetime.fromtimestamp(action.starts, policy.timezone).isoformat(timespec="seconds"),
            "until": dt.datetime.fromtimestamp(action.until, policy.timezone).isoformat(timespec="seconds")}


def _explain(url: str, decision: Decision, client: str | None, at: dt.datetime, policy: Policy,
             action: ClassAction | None = None) -> None:
    from classgate.policies.groups import group_path

    when = f"{at:%Y-%m-%d %H:%M} ({policy.timezone.key})"
    path = " > ".join(reversed(group_path(policy.document.groups, decision.group)))
    verdict = click.style(decision.action.upper(), fg="red" if decision.action == "block" else "green", bold=True)
    rule = f"rule {decision.rule!r}" if decision.rule else "the default"
    click.echo(f"{verdict} by {rule} (tier {decision.tier})")
    if decision.error:
        click.echo(f"  url       {url}: {decision.error}")
    else:
        click.echo(f"  url       {decision.url}")
    click.echo(f"  client    {client or '(none)'} -> group {path}")
    click.echo(f"  time      {when} -> schedules: {', '.join(decision.schedules) or '(none active)'}")
    click.echo(f"  host      {decision.host or '?'} -> categories: {', '.join(decision.categories) or '(none)'}")
    for m in decision.matched:
        click.echo(f"  matched   {m.category}: {m.entry} (from {m.source})")
    if action is not None:
        until = dt.datetime.fromtimestamp(action.until, policy.timezone)
        what = "pause" if action.kind == "pause" else f"{action.kind} {', '.join(action.sites)}"
        click.echo(f"  teacher   {what} for group {action.group}, by {action.by}, until {until:%Y-%m-%d %H:%M} "
                   f"(class action {action.id})")


def _check_lines(stream: TextIO, policy: Policy, default_client: str | None, at: dt.datetime,
                 actions: ClassActions) -> int:
    """One JSON line per input line `URL [CLIENT]`; returns how many lines could not be read."""
    bad = 0
    for raw in stream:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) > 2:
            bad += 1
            click.echo(json.dumps({"input": line, "error": "expected `URL [CLIENT]`"}))
            continue
        client = default_client
        if len(parts) == 2:
            try:
                client = str(ipaddress.ip_address(parts[1].strip("[]")))
            except ValueError:
                bad += 1
                click.echo(json.dumps({"input": line, "error": f"{parts[1]!r} is not an IP address"}))
                continue
        decision, action = actions.explain(policy, policy.decide(parts[0], client=client, at=at), at.timestamp())
        out = decision_json(decision, client, at)
        out["class_action"] = _action_json(action, policy)
        click.echo(json.dumps(out, ensure_ascii=False))
    return bad


@click.command()
@click.argument("url")
@click.option(
    "--policy",
    "policy_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The Department's policy file (YAML). Default: the sample policy shipped with classgate, as for "
         "`classgate run`.",
)
@overlay_option
@click.option("--client", "client_text", metavar="IP", default=None, help="The client address (decides the group).")
@click.option("--at", "at_text", metavar='"YYYY-MM-DD HH:MM"', default=None,
              help="Local time in the policy's time zone (default: now).")
@json_option
@cache_state_dir_option
@renamed("--cache-dir", "--state-dir", type=click.Path(file_okay=False, path_type=Path))
@click.pass_context
def check(ctx: click.Context, url: str, policy_path: Path | None, overlay_path: Path | None,
          client_text: str | None, at_text: str | None, as_json: bool, state_dir: Path | None) -> None:
    """Show what the policy decides for URL, and why.

    URL "-" reads `URL [CLIENT]` lines from stdin and prints one JSON object per line. With --state-dir, the
    teachers' class actions kept there (in force at --at) are applied and explained (tier `teacher`).
    """
    # Bad usage is reported before the (slower) compilation.
    client = _client(client_text)
    naive_at = _at(at_text)
    from classgate.agent.commands.run import sample_policy

    policy, _ = _compile(policy_path or sample_policy(), overlay_path, state_or_cache_dir(ctx, state_dir))
    # Without --at: now, said explicitly (the answer depends on it), to the second.
    at = naive_at.replace(tzinfo=policy.timezone) if naive_at else dt.datetime.now(policy.timezone).replace(
        microsecond=0)
    actions = _class_actions(state_dir)
    if url == "-":
        bad = _check_lines(sys.stdin, policy, client, at, actions)
        if bad:
            raise click.ClickException(f"{bad} input line{'s' if bad != 1 else ''} could not be read")
        return
    decision, action = actions.explain(policy, policy.decide(url, client=client, at=at), at.timestamp())
    if as_json:
        out = decision_json(decision, client, at)
        out["class_action"] = _action_json(action, policy)
        click.echo(json.dumps(out, ensure_ascii=False))
    else:
        _explain(url, decision, client, at, policy, action)
