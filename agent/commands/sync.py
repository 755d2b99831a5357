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

from classgate.agent.commands.options import json_option, overlay_option, state_dir_option

trust_option = click.option(
    "--trust", "trust_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
    help="The Department's root.json, given at install time (there is no unsigned mode).")


@click.command()
@click.option("--from", "url", required=True, metavar="URL", help="The Department repository's base URL.")
@trust_option
@state_dir_option
@overlay_option
@click.option("--once", is_flag=True, help="One poll, then exit (1 when it failed).")
@click.option("--min-interval", type=click.FloatRange(min=0.01), default=300.0, show_default=True,
              help="Seconds between polls: at least ...")
@click.option("--max-interval", type=click.FloatRange(min=0.01), default=900.0, show_default=True,
              help="... and at most (jittered in between).")
@click.option("--report-to", default=None, metavar="URL", help="POST this gateway's status here (off by default).")
@click.option("--gateway", default=None, help="This gateway's name in reports (default: the host name).")
def sync(url: str, trust_path: Path, state_dir: Path, overlay_path: Path | None, once: bool, min_interval: float,
         max_interval: float, report_to: str | None, gateway: str | None) -> None:
    """Fetch, verify, validate and install the Department's newest policy bundle into STATE_DIR/sync.

    Inside the gateway the same agent runs as part of `classgate run --sync-from URL --trust FILE`.
    """
    from classgate.agent.sync.loop import PollSettings
    from classgate.agent.sync.service import SyncConfig, SyncService

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
        ok = asyncio.run(one())
        status = service.reporter.status
        if not ok:
            error = status.last_error or {}
            raise click.ClickException(f"sync failed ({error.get('reason')}): {error.get('message')}; "
                                       f"installed bundle: {status.active_version or 'none'}")
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
    """Show the sync status: active bundle, last poll, last error, metadata expiry."""
    from classgate.agent.sync.status import read_status

    try:
        data = read_status(state_dir)
    except FileNotFoundError:
        raise click.ClickException(f"{state_dir}/status.json: no sync status yet (has sync ever run here?)") \
            from None
    except (OSError, ValueError) as e:
        raise click.ClickException(f"{state_dir}/status.json: unreadable ({e})") from None
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    click.echo(_human(data))


def _human(data: dict[str, Any]) -> str:
    def age(iso: str | None) -> str:
        if not iso:
            return "never"
        then = dt.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()
        delta = time.time() - then
        words = f"{abs(delta) / 3600:.1f} h" if abs(delta) >= 3600 else f"{abs(delta):.0f} s"
        return f"{iso} ({words} {'ago' if delta >= 0 else 'from now'})"

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
