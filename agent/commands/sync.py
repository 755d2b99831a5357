"""`classgate sync` (the sync agent alone, for cron and debugging) and `classgate status`."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from pathlib import Path
from typing import Any

import click

from classgate.agent.commands.options import (
    Interval,
    json_option,
    old_spelling,
    overlay_option,
    renamed,
    state_dir_option,
)
from classgate.agent.commands.zones import local_time, policy_zone

trust_option = click.option(
    "--trust", "trust_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
    help="The Department's root.json, given at install time (there is no unsigned mode).")


@click.command()
@click.option("--sync-from", "url", default=None, metavar="URL",
              help="The Department repository's base URL (as for `classgate run --sync-from`).")
@renamed("--from", "--sync-from")
@trust_option
@state_dir_option
@overlay_option
@click.option("--once", is_flag=True, help="One poll, then exit (1 when it failed).")
@click.option("--sync-interval", "interval", type=Interval(), default="300-900", show_default=True,
              help="Seconds between polls, jittered between MIN and MAX.")
@renamed("--min-interval", "--sync-interval-min", type=float)
@renamed("--max-interval", "--sync-interval-max", type=float)
@click.option("--sync-report-to", "report_to", default=None, metavar="URL",
              help="POST this gateway's status here (version, health, group sizes; no usage data). Off by default.")
@renamed("--report-to", "--sync-report-to")
@click.option("--gateway", default=None, help="This gateway's name in reports (default: the host name).")
@click.pass_context
def sync(ctx: click.Context, url: str | None, trust_path: Path, state_dir: Path, overlay_path: Path | None,
         once: bool, interval: tuple[float, float], report_to: str | None, gateway: str | None) -> None:
    """Fetch, verify, validate and install the Department's newest policy bundle into STATE_DIR/sync.

    Inside the gateway the same agent runs as part of `classgate run --sync-from URL --trust FILE`.
    """
    from classgate.agent.sync.loop import PollSettings
    from classgate.agent.sync.service import SyncConfig, SyncService

    url = url or old_spelling(ctx, "--sync-from")
    if not url:
        raise click.UsageError("missing option '--sync-from' (the Department repository's base URL)")
    report_to = report_to or old_spelling(ctx, "--sync-report-to")
    min_interval = old_spelling(ctx, "--sync-interval-min") or interval[0]
    max_interval = old_spelling(ctx, "--sync-interval-max") or max(interval[1], min_interval)
    try:
        poll = PollSettings(min_interval=min_interval, max_interval=max_interval,
                            backoff_base=min(10.0, min_interval), backoff_max=max(3600.0, max_interval))
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    extra: dict[str, Any] = {"gateway": gateway} if gateway else {}
    config = SyncConfig(url=url, trust_root=trust_path.read_bytes(), state_dir=state_dir,
                        overlay_path=overlay_path, poll=poll, report_to=report_to, **extra)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    service = SyncService(config)

    async def one() -> bool:
        await service.start(activate=False)
        return await service.sync_once()

    if once:
        before = _installed_version(state_dir)
        ok = asyncio.run(one())
        status = service.reporter.status
        if not ok:
            error = status.last_error or {}
            raise click.ClickException(f"sync failed ({error.get('reason')}): {error.get('message')}; "
                                       f"installed bundle: {status.active_version or 'none'}")
        if status.active_version is not None and status.active_version != before:
            click.echo(f"installed bundle {status.active_version}"
                       + (f" (was {before})" if before is not None else ""))
        else:
            click.echo(f"up to date: bundle {status.active_version}")
        return
    try:
        asyncio.run(service.run(activate=False))
    except KeyboardInterrupt:
        pass


@click.command()
@state_dir_option
@json_option
def status(state_dir: Path, as_json: bool) -> None:
    """Show what the gateway enforces (policy, version, a fallback) and the Department sync's status."""
    from classgate.agent.sync.status import read_status
    from classgate.proxy import policy_status

    policy: dict[str, Any] | None = None
    data: dict[str, Any] = {}
    try:
        policy = policy_status.read_status(state_dir)
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as e:
        raise click.ClickException(f"{policy_status.status_file(state_dir)}: unreadable ({e})") from None
    try:
        data = read_status(state_dir)
    except FileNotFoundError:
        if policy is None:
            raise click.ClickException(f"{state_dir}: no status yet (has `classgate run` or `classgate sync` ever "
                                       "run with this --state-dir?)") from None
    except (OSError, ValueError) as e:
        raise click.ClickException(f"{state_dir}/status.json: unreadable ({e})") from None
    if as_json:
        # The sync status at the top (as before the policy status existed), the policy under "policy".
        click.echo(json.dumps({**data, "policy": policy}, indent=2, sort_keys=True))
        return
    zone = policy_zone(policy.get("timezone") if policy else None)
    lines = _policy_lines(policy, zone) if policy is not None else []
    lines.append(_human(data, zone) if data else "sync:              not configured (no status.json)")
    click.echo("\n".join(lines))


def _policy_lines(policy: dict[str, Any], zone: dt.tzinfo) -> list[str]:
    def when(ts: object) -> str:
        return local_time(float(ts), zone) if isinstance(ts, int | float) else "?"

    head = (f"policy:            {policy.get('name')} version {policy.get('version')} (from {policy.get('source')}: "
            f"{policy.get('policy_path')}), loaded {when(policy.get('loaded_at'))}")
    lines = [head]
    if policy.get("overlay_path"):
        lines.append(f"overlay:           {policy['overlay_path']}")
    fallback = policy.get("fallback")
    if fallback:
        lines.append(f"FALLBACK:          the configured policy does not validate; enforcing the last good one "
                     f"(version {fallback.get('kept_version')}, kept {when(fallback.get('kept_at'))}). Fix:")
        lines += [f"                     {problem}" for problem in fallback.get("problems") or []]
    rejected = policy.get("rejected")
    if rejected:
        lines.append(f"rejected reload:   {rejected.get('path')} at {when(rejected.get('at'))} (still enforcing the "
                     "policy above):")
        lines += [f"                     {problem}" for problem in rejected.get("problems") or []]
    return lines


def _installed_version(state_dir: Path) -> int | None:
    """The bundle installed before this run (status.json), if any."""
    from classgate.agent.sync.status import read_status

    try:
        version = read_status(state_dir).get("active_version")
    except (OSError, ValueError):
        return None
    return int(version) if isinstance(version, int) else None


def _human(data: dict[str, Any], zone: dt.tzinfo = dt.UTC) -> str:
    def age(iso: str | None) -> str:
        if not iso:
            return "never"
        then = dt.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()
        delta = time.time() - then
        words = f"{abs(delta) / 3600:.1f} h" if abs(delta) >= 3600 else f"{abs(delta):.0f} s"
        return f"{local_time(then, zone)} ({words} {'ago' if delta >= 0 else 'from now'})"

    error = data.get("last_error") or {}
    rejected = data.get("rejected") or {}
    lines = [
        f"state:             {data.get('state')}",
        f"department:        {data.get('url')}",
        f"active bundle:     {data.get('active_version') or 'none'}"
        + (f" (policy {data['active_policy']})" if data.get("active_policy") else "")
        + (f", published {data['active_published']}" if data.get("active_published") else ""),
        f"active since:      {age(data.get('active_since'))}",
        f"last attempt:      {age(data.get('last_attempt'))}",
        f"last success:      {age(data.get('last_success'))}",
        f"next attempt:      {age(data.get('next_attempt'))}",
        f"metadata expires:  {age(data.get('metadata_expires'))}",
    ]
    if error:
        lines.append(f"last error:        {error.get('reason')}: {error.get('message')} "
                     f"({data.get('consecutive_failures')} in a row)")
    if rejected:
        lines.append(f"rejected bundle:   {rejected.get('version')} ({rejected.get('reason')}): "
                     f"{rejected.get('message')}")
    lines += [f"note:              {note}" for note in data.get("notes") or []]
    return "\n".join(lines)
