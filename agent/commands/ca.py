"""`classgate ca`: the school CA that devices install so HTTPS can be filtered."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from classgate.agent.commands.options import state_dir_option


@click.group()
def ca() -> None:
    """The school CA (created in the state directory by the first `classgate run`)."""


@ca.command("export")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["pem", "der"]),
    default="pem",
    show_default=True,
    help="pem for most systems; der (.crt/.cer) for Windows and some Android versions.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to this file instead of standard output.",
)
@click.option(
    "--create",
    is_flag=True,
    help="Create the CA if the state directory has none yet (to hand it out before the first start).",
)
@click.option("--ca-name", default=None, metavar="SCHOOL",
              help="With --create: the school's name on a new CA, as devices show it (at most 40 characters).")
@state_dir_option
def export(fmt: str, output: Path | None, create: bool, ca_name: str | None, state_dir: Path) -> None:
    """Print (or write) the school CA certificate. Never the private key."""
    from classgate.proxy.ca import CaError, ca_dir, ensure_ca

    created = not (ca_dir(state_dir) / "mitmproxy-ca.pem").exists()
    if created and not create:
        # A wrong --state-dir must not quietly mint a second CA that devices would install in vain.
        raise click.ClickException(
            f"no school CA in {ca_dir(state_dir)}: give the gateway's --state-dir (e.g. /var/lib/classgate), "
            "or add --create to make one before the gateway first starts"
        )
    try:
        school_ca = ensure_ca(state_dir, ca_name)
    except CaError as e:
        raise click.ClickException(str(e)) from None
    data = school_ca.pem() if fmt == "pem" else school_ca.der()
    if created:
        click.echo(f"created a new school CA \"{school_ca.name}\" in {school_ca.directory}", err=True)
    elif ca_name:
        click.echo(f"warning: the school CA exists already (\"{school_ca.name}\"); --ca-name only names a new one",
                   err=True)
    click.echo(f"SHA-256 fingerprint: {school_ca.sha256_fingerprint()}", err=True)
    if output is not None:
        try:
            output.write_bytes(data)
        except OSError as e:
            raise click.ClickException(f"cannot write {output}: {e}") from None
        click.echo(f"wrote {output}", err=True)
    elif fmt == "der" and sys.stdout.isatty():
        raise click.UsageError("DER is binary: use --output FILE or redirect standard output")
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
