"""Options shared by several commands, declared once (pip-tools' scripts/options.py pattern)."""

from __future__ import annotations

from pathlib import Path

import click

policy_option = click.option(
    "--policy",
    "policy_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The Department's policy file (YAML).",
)
overlay_option = click.option(
    "--overlay",
    "overlay_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The school's overlay file (YAML, `overlay: true`).",
)
state_dir_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".classgate"),
    show_default=True,
    help="Where classgate keeps its CA, compiled lists and synced bundles.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
cache_dir_option = click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep compiled lists here and reuse them while the lists are unchanged.",
)
