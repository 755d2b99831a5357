"""The `classgate` command: a thin click group; each command family lives in agent/commands/."""

from __future__ import annotations

import click

from classgate.agent import __version__
from classgate.agent.commands import (
    ca,
    classroom,
    console,
    department,
    lists,
    policy,
    run,
    stats,
    sync,
    teachers,
)


class _OrderedGroup(click.Group):
    """Lists commands in the order they are added (the everyday ones first), not alphabetically."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


@click.group(cls=_OrderedGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="classgate")
def main() -> None:
    """classgate: the content filter for school networks.

    Validate and test policies, run the filtering gateway, and sync signed policies from the
    Department of Education.
    """


# Order here is the order `classgate --help` lists them in: the everyday admin commands first.
for command in (
    policy.validate,
    policy.check,
    run.run,
    classroom.classroom,
    teachers.teachers,
    console.console,
    ca.ca,
    stats.stats,
    sync.status,
    sync.sync,
    department.department,
    lists.lists,
):
    main.add_command(command)
