"""`classgate lists fetch ...`: bring fresh category lists to the Department before a publish."""

from __future__ import annotations

from pathlib import Path

import click

from classgate.agent.commands.department import department_errors


@click.group()
def lists() -> None:
    """Category lists: fetch them from their upstream."""


@lists.group()
def fetch() -> None:
    """Download a list collection into a folder."""


@fetch.command()
@click.argument("dest", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option("--url", default=None, help="Where the <category>.tar.gz archives are "
              "(default: https://dsi.ut-capitole.fr/blacklists/download).")
@click.option("--categories", default=None, metavar="A,B,...", help="Categories to fetch (default: a school set).")
def ut1(dest: Path, url: str | None, categories: str | None) -> None:
    """Fetch UT1 categories into DIR/<category>/ (domains, urls, ...), replacing each atomically."""
    from classgate.agent.department.ut1 import DEFAULT_URL, fetch_categories, parse_categories

    with department_errors():
        names = parse_categories(categories)
        for fetched in fetch_categories(dest, names, url or DEFAULT_URL):
            click.echo(f"{fetched.category}: {', '.join(fetched.files)} "
                       f"({fetched.archive_bytes} bytes downloaded, {fetched.unpacked_bytes} unpacked)")
    click.echo("UT1 lists: Fabrice Prigent, Université Toulouse Capitole, CC BY-SA 4.0")
