"""`classgate stats`: the top sites per category, read from a running gateway's /stats.json."""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
from typing import Any

import click

from classgate.agent.commands.options import json_option
from classgate.metrics.server import DEFAULT_HOST, DEFAULT_PORT, MAX_TOP

DEFAULT_URL = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"


class StatsError(Exception):
    """The gateway's statistics could not be read."""


def fetch_stats(base_url: str, top: int, timeout: float = 5.0) -> dict[str, Any]:
    """GET <base_url>/stats.json?n=<top>; raises StatsError with a sentence an admin can act on."""
    url = f"{base_url.rstrip('/')}/stats.json?n={top}"
    if not url.startswith(("http://", "https://")):
        raise StatsError(f"{base_url!r} is not an http:// or https:// URL")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read(8 * 1024 * 1024)
    except urllib.error.HTTPError as e:
        raise StatsError(f"{url}: the server answered {e.code} {e.reason}") from e
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise StatsError(
            f"cannot reach {url}: {reason}. Is `classgate run --metrics HOST:PORT` running there?"
        ) from e
    try:
        doc = json.loads(body)
    except ValueError as e:
        raise StatsError(f"{url} did not return JSON; is that a classgate metrics address?") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("categories"), dict):
        raise StatsError(f"{url} did not return classgate statistics")
    return doc


def format_stats(doc: dict[str, Any]) -> str:
    """A plain-text report, one block per category, busiest category first."""
    since = dt.datetime.fromtimestamp(float(doc.get("since", 0)), dt.UTC)
    lines = [
        (
            f"Top sites since {since:%Y-%m-%d %H:%M} UTC "
            f"(a site is shown once {doc.get('min_clients', '?')} different devices requested it)"
        ),
    ]
    categories = sorted(doc["categories"].items(), key=lambda kv: -int(kv[1].get("requests", 0)))
    if not categories:
        lines.append("No requests counted yet.")
    for name, cat in categories:
        lines.append("")
        lines.append(
            f"{name}: {cat.get('requests', 0)} requests (counts may be over by up to {cat.get('max_error', 0)})"
        )
        top = cat.get("top") or []
        width = max((len(str(site["domain"])) for site in top), default=0)
        for rank, site in enumerate(top, 1):
            lines.append(f"  {rank:>3}. {site['domain']:<{width}}  {site['requests']:>9}")
        if cat.get("hidden_domains"):
            lines.append(f"       ({cat['hidden_domains']} sites seen by too few devices not shown)")
    return "\n".join(lines)


@click.command()
@click.option(
    "--url",
    default=DEFAULT_URL,
    show_default=True,
    help="The gateway's metrics address (`classgate run --metrics`).",
)
@click.option(
    "--top",
    type=click.IntRange(1, MAX_TOP),
    default=10,
    show_default=True,
    help="How many sites to show per category.",
)
@json_option
def stats(url: str, top: int, as_json: bool) -> None:
    """Show the most requested sites per category (registrable domains, no per-student data)."""
    try:
        doc = fetch_stats(url, top)
    except StatsError as e:
        raise click.ClickException(str(e)) from e
    click.echo(json.dumps(doc, ensure_ascii=False, indent=2) if as_json else format_stats(doc))
