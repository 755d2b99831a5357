"""`classgate department ...`: the Department's signed policy repository (TUF)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from classgate.agent.department.errors import DepartmentError
from classgate.agent.department.keys import OFFLINE_ROLES, ROLES

repo_dir_argument = click.argument("repo_dir", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
keys_option = click.option(
    "--keys", "keys_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Folder holding the private keys (default DIR/keys); mount the offline keys here when needed.")


@contextmanager
def department_errors() -> Iterator[None]:
    """DepartmentError and I/O errors -> exit 1 with the message (never a traceback)."""
    try:
        yield
    except DepartmentError as e:
        raise click.ClickException(str(e)) from None
    except OSError as e:
        raise click.ClickException(f"{e.filename or ''}: {e.strerror or e}") from None


def _role_numbers(values: tuple[str, ...], what: str) -> dict[str, int]:
    result: dict[str, int] = {}
    for value in values:
        role, sep, number = value.partition("=")
        if not sep or role not in ROLES or not number.isdigit() or int(number) < 1:
            raise click.BadParameter(f"{value!r}: expected ROLE=N with ROLE one of {', '.join(ROLES)}, N >= 1",
                                     param_hint=what)
        result[role] = int(number)
    return result


@click.group()
def department() -> None:
    """The Department's signed policy repository: create it, publish bundles, serve it.

    The repository (DIR/repository) is static files that any web server can serve; gateways verify
    everything they download against the root.json given to them at install time.
    """


@department.command()
@repo_dir_argument
@click.option("--keys", "key_counts", multiple=True, metavar="ROLE=N", help="Number of keys for a role (default 1).")
@click.option("--threshold", "thresholds", multiple=True, metavar="ROLE=N",
              help="Signatures a role needs (default 1); e.g. --keys root=3 --threshold root=2.")
@click.option("--expires", "expiry", multiple=True, metavar="ROLE=DAYS",
              help="Lifetime of each role's metadata (defaults: root 365, targets 180, snapshot 7, timestamp 1).")
@click.option("--sample-policy", is_flag=True,
              help="Also copy classgate's sample policy and its lists into DIR/policy, to start from.")
def init(repo_dir: Path, key_counts: tuple[str, ...], thresholds: tuple[str, ...], expiry: tuple[str, ...],
         sample_policy: bool) -> None:
    """Create the repository and its keys in DIR."""
    from classgate.agent.department.repository import init_repository

    counts = _role_numbers(key_counts, "--keys")
    thresh = _role_numbers(thresholds, "--threshold")
    for role, n in thresh.items():  # `--threshold root=2` alone means two keys
        counts.setdefault(role, n)
    with department_errors():
        result = init_repository(repo_dir, counts, thresh, _role_numbers(expiry, "--expires"))
    root_json = repo_dir / "repository" / "metadata" / "1.root.json"
    policy = _starting_policy(repo_dir / "policy") if sample_policy else None
    click.echo(f"created the Department repository in {repo_dir}")
    click.echo(f"  serve:       {repo_dir / 'repository'}  (static files; see deploy/department/)")
    click.echo(f"  trust root:  {root_json}  -> copy to every gateway at install time (--trust)")
    if policy is not None:
        click.echo(f"  policy:      {policy}  (the sample policy to start from: its lists are beside it, "
                   "and every list a published policy uses must be in its folder or below)")
    click.echo("keys (private, 0600):")
    for role in ROLES:
        where = ("OFFLINE: move to an encrypted USB key in the safe; needed only to "
                 + ("change keys" if role == "root" else "publish")) if role in OFFLINE_ROLES else \
            "ONLINE: stays on the publishing server for the refresh timer"
        click.echo(f"  {role:<9} {result.thresholds[role]}-of-{len(result.keys[role])}  {where}")
        for path in result.keys[role]:
            click.echo(f"      {path}")
    published = policy or repo_dir / "policy" / "department.yaml"
    if policy is None:
        click.echo(f"next: put the Department policy in {published.parent} with its lists beside it (publish "
                   "takes only lists in the policy's folder or below; --sample-policy starts one), then:")
    else:
        click.echo("next: edit the policy, then:")
    click.echo(f"  classgate department publish {repo_dir} --policy {published}")


def _starting_policy(folder: Path) -> Path | None:
    """A copy of the shipped sample policy and its lists in `folder`, unless a policy is there already."""
    import shutil
    from importlib import resources

    if folder.exists():
        return None
    samples = Path(str(resources.files("classgate.policies").joinpath("samples")))
    folder.mkdir(parents=True)
    shutil.copy2(samples / "department.yaml", folder / "department.yaml")
    shutil.copytree(samples / "lists", folder / "lists")
    return folder / "department.yaml"


@department.command()
@repo_dir_argument
@click.option("--policy", "policy_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="The Department policy; its lists must be in its folder or below.")
@keys_option
@click.option("--comment", default="", help="A note stored in the bundle manifest.")
def publish(repo_dir: Path, policy_path: Path, keys_dir: Path | None, comment: str) -> None:
    """Validate the policy and its lists, then publish them as the next bundle."""
    from classgate.agent.department.publish import publish as do_publish
    from classgate.agent.department.repository import Repository

    with department_errors():
        result = do_publish(Repository.open(repo_dir, keys_dir), policy_path, comment=comment)
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"published bundle {result.version}: {result.files} files, {result.total_bytes} bytes "
               f"({result.new_files} new files, {result.new_bytes} new bytes)")


@department.command()
@repo_dir_argument
@keys_option
@click.option("--force-snapshot", is_flag=True, help="Re-sign the snapshot even if it is not near expiry.")
def refresh(repo_dir: Path, keys_dir: Path | None, force_snapshot: bool) -> None:
    """Re-sign timestamp (and snapshot when due) with the online keys: run it from a timer."""
    from classgate.agent.department.repository import Repository
    from classgate.agent.department.repository import refresh as do_refresh

    with department_errors():
        snapshot, timestamp = do_refresh(Repository.open(repo_dir, keys_dir), force_snapshot=force_snapshot)
    click.echo(f"refreshed: timestamp {timestamp}, snapshot {snapshot}")


@department.command("rotate-key")
@repo_dir_argument
@click.argument("role", type=click.Choice(ROLES))
@keys_option
def rotate_key(repo_dir: Path, role: str, keys_dir: Path | None) -> None:
    """Replace ROLE's keys through a new root version (needs the root keys)."""
    from classgate.agent.department.repository import Repository
    from classgate.agent.department.repository import rotate_key as do_rotate

    with department_errors():
        version, new_files, retired = do_rotate(Repository.open(repo_dir, keys_dir), role)
    click.echo(f"root version {version} trusts new {role} key(s); gateways pick it up on their next poll")
    for path in new_files:
        click.echo(f"  new:     {path}")
    for path in retired:
        click.echo(f"  retired: {path}  (destroy it once every gateway runs root {version})")


@department.command()
@repo_dir_argument
@click.option("--keep", type=click.IntRange(min=2), default=3, show_default=True,
              help="Bundles to keep (older list versions and metadata are deleted; root never is).")
def prune(repo_dir: Path, keep: int) -> None:
    """Delete files of bundles older than the newest KEEP from the repository."""
    from classgate.agent.department.repository import Repository
    from classgate.agent.department.repository import prune as do_prune

    with department_errors():
        removed, freed = do_prune(Repository.open(repo_dir), keep)
    click.echo(f"pruned {removed} files ({freed} bytes); kept the newest {keep} bundles")


@department.command()
@repo_dir_argument
@click.option("--listen", default="127.0.0.1:8780", show_default=True, metavar="HOST:PORT",
              help="Address to serve on (port 0 picks a free one).")
def serve(repo_dir: Path, listen: str) -> None:
    """Serve DIR/repository over HTTP, with /fleet and /report (for trying it out)."""
    from classgate.agent.department.server import make_server
    from classgate.proxy.address import parse_address

    try:
        address = parse_address(listen)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--listen") from None
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with department_errors():
        server = make_server(repo_dir, address.host, address.port)
    bound_host, bound_port = str(server.server_address[0]), server.server_address[1]
    click.echo(f"serving {repo_dir / 'repository'} on http://{bound_host}:{bound_port}/ (fleet: /fleet)",
               err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
