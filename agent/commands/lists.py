"""`classgate lists fetch ...`: bring fresh category lists to the Department before a publish."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from classgate.agent.commands.department import department_errors, keys_option
from classgate.agent.commands.problems import policy_errors

if TYPE_CHECKING:
    from classgate.agent.department.listfetch import Outcome


@click.group()
def lists() -> None:
    """Category lists: fetch them from their upstream."""


@lists.command()
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("--policy", "policy_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="The Department policy: every source with a `url` is fetched into its `path` "
                   "(NAME: only these sources, or ut1 lists as SOURCE/LIST).")
@click.option("--mirror", metavar="BASE_URL", default=None,
              help="Fetch every list from this mirror instead, at its path under the policy's folder "
                   "(BASE_URL/lists/...).")
@click.option("--force", is_flag=True, help="Accept lists that came back empty or much smaller (never a file "
                                            "that is not of its format).")
@click.option("--max-shrink", type=click.IntRange(0, 100), default=20, show_default=True, metavar="PERCENT",
              help="Refuse a list that would lose more than this share of its entries.")
@click.option("--publish", "publish_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              metavar="DIR", help="Then validate and publish to the Department repository DIR, if a file of the "
                                  "bundle differs from the published one.")
@keys_option
@click.option("--url", default=None, help="One-off form only (lists fetch ut1 DIR): where the <category>.tar.gz "
              "archives are (default: https://dsi.ut-capitole.fr/blacklists/download).")
@click.option("--categories", default=None, metavar="A,B,...",
              help="One-off form only: UT1 categories to fetch (default: a school set).")
def fetch(names: tuple[str, ...], policy_path: Path | None, mirror: str | None, force: bool, max_shrink: int,
          publish_dir: Path | None, keys_dir: Path | None, url: str | None, categories: str | None) -> None:
    """Fetch the lists a policy subscribes to (`--policy FILE`), or UT1 categories into a folder (`ut1 DIR`).

    A list that is not of its format, came back empty or would shrink by more than --max-shrink is refused
    and the old one kept; the exit code is then 1. Unchanged lists cost one small request each.
    """
    if policy_path is None:
        if len(names) != 2 or names[0] != "ut1" or mirror or force or publish_dir:
            raise click.UsageError("give --policy FILE (it fetches every source with a url), or use the one-off "
                                   "form: classgate lists fetch ut1 DIR [--url URL] [--categories A,B]")
        _fetch_ut1(Path(names[1]), url, categories)
        return
    if url or categories:
        raise click.UsageError("--url and --categories belong to the one-off form (lists fetch ut1 DIR); with "
                               "--policy each source's `url` says where its list comes from")
    if mirror is not None and not mirror.startswith(("http://", "https://")):
        raise click.BadParameter(f"{mirror!r}: expected an http:// or https:// address", param_hint="--mirror")
    from classgate.agent.department.list_publish import publish_if_changed
    from classgate.agent.department.listfetch import FetchSettings, fetch_lists
    from classgate.agent.department.subscriptions import read_subscriptions

    with policy_errors("the policy cannot be read"), department_errors():
        subscriptions = read_subscriptions(policy_path, names, mirror)
    if not subscriptions:
        click.echo("no source of the policy has a url: nothing to fetch")
    outcomes = fetch_lists(subscriptions, FetchSettings(max_shrink=max_shrink / 100, force=force))
    for outcome in outcomes:
        click.echo(_describe(outcome))
    counts = {s: sum(1 for o in outcomes if o.status == s) for s in ("updated", "unchanged", "refused", "failed")}
    click.echo("lists: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    if any(s.source.format == "ut1" for s in subscriptions):
        click.echo("UT1 lists: Fabrice Prigent, Université Toulouse Capitole, CC BY-SA 4.0")
    if publish_dir is not None:
        # Lists that were refused keep their old version, which is valid: the others are still published,
        # so one broken upstream does not hold back every other list.
        with department_errors():
            pending, result = publish_if_changed(publish_dir, policy_path, keys_dir)
        if result is None:
            click.echo(f"nothing to publish: the policy's files are those of bundle {pending.published_version}")
        else:
            for warning in result.warnings:
                click.echo(f"warning: {warning}", err=True)
            click.echo(f"published bundle {result.version}: {len(pending.changed)} changed files "
                       f"({result.new_bytes} new bytes)")
    bad = counts["refused"] + counts["failed"]
    if bad:
        raise click.ClickException(f"{bad} list{'s' if bad != 1 else ''} not updated (see above); "
                                   "the old version is kept")


def _describe(outcome: Outcome) -> str:
    if outcome.status == "updated":
        return f"{outcome.label}: updated +{outcome.added} -{outcome.removed} ({outcome.entries} entries)"
    if outcome.status == "unchanged":
        return f"{outcome.label}: unchanged ({outcome.message}; {outcome.entries} entries)"
    return f"{outcome.label}: {outcome.status.upper()}: {outcome.message}"


def _fetch_ut1(dest: Path, url: str | None, categories: str | None) -> None:
    """The one-off form: UT1 categories into DIR/<category>/, each replaced atomically."""
    from classgate.agent.department.ut1 import DEFAULT_URL, fetch_categories, parse_categories

    with department_errors():
        names = parse_categories(categories)
        for fetched in fetch_categories(dest, names, url or DEFAULT_URL):
            click.echo(f"{fetched.category}: {', '.join(fetched.files)} "
                       f"({fetched.archive_bytes} bytes downloaded, {fetched.unpacked_bytes} unpacked)")
    click.echo("UT1 lists: Fabrice Prigent, Université Toulouse Capitole, CC BY-SA 4.0")
