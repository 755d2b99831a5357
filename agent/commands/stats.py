"""`classgate stats`: the top sites per category, read from a running gateway's /stats.json."""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
from typing import Any

import click

from classgate.agent.commands.options import AddressParam, json_option, old_spelling, renamed
from classgate.agent.commands.zones import policy_zone
from classgate.metrics.server import DEFAULT_HOST, DEFAULT_PORT, MAX_TOP
from classgate.proxy.address import Address


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


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else plural or word + 's'}"


def format_stats(doc: dict[str, Any]) -> str:
    """A plain-text report, one block per category, busiest category first; times in the policy's zone."""
    zone = policy_zone(doc.get("timezone", "UTC"))
    since = dt.datetime.fromtimestamp(float(doc.get("since", 0)), zone)
    lines = [
        f"Top sites since {since:%Y-%m-%d %H:%M} ({getattr(zone, 'key', 'UTC')}), when the gateway started.",
        (f"A site is listed once {doc.get('min_clients', '?')} different devices asked for it. Requests are "
         "those decided on their address (plain HTTP and inspected HTTPS); connections passed through or refused "
         "by name count in /metrics (classgate_requests_total) but list no site here."),
    ]
    categories = sorted(doc["categories"].items(), key=lambda kv: -int(kv[1].get("requests", 0)))
    if not categories:
        lines.append("No requests counted yet.")
    for name, cat in categories:
        lines.append("")
        over = int(cat.get("max_error", 0))
        lines.append(f"{name}: {_plural(int(cat.get('requests', 0)), 'request')}"
                     + (f" (each count below may be over by up to {over:,})" if over else ""))
        top = cat.get("top") or []
        width = max((len(str(site["domain"])) for site in top), default=0)
        for rank, site in enumerate(top, 1):
            lines.append(f"  {rank:>3}. {site['domain']:<{width}}  {site['requests']:>9}")
        if cat.get("hidden_domains"):
            hidden = int(cat["hidden_domains"])
            lines.append(f"       ({_plural(hidden, 'site')} seen by too few devices {'is' if hidden == 1 else 'are'}"
                         " not shown)")
    return "\n".join(lines)


@click.command()
@click.option(
    "--metrics",
    "address",
    type=AddressParam(),
    default=f"{DEFAULT_HOST}:{DEFAULT_PORT}",
    show_default=True,
    help="The gateway's metrics address, as given to `classgate run --metrics`.",
)
@renamed("--url", "--metrics")
@click.option(
    "--top",
    type=click.IntRange(1, MAX_TOP),
    default=10,
    show_default=True,
    help="How many sites to show per category.",
)
@json_option
@click.pass_context
def stats(ctx: click.Context, address: Address, top: int, as_json: bool) -> None:
    """Show the most requested sites per category (registrable domains, no per-student data)."""
    url = old_spelling(ctx, "--metrics") or f"http://{address}"
    try:
        doc = fetch_stats(url, top)
    except StatsError as e:
        raise click.ClickException(str(e)) from e
    click.echo(json.dumps(doc, ensure_ascii=False, indent=2) if as_json else format_stats(doc))
