"""The install guide says only true things: every classgate command and option it shows exists, and
every deploy/ file it names is in the repository."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from tests.deploy.deploy_helpers import REPO

DOCS = [REPO / "docs" / "deploy.md", REPO / "deploy" / "README.md"]


def snippets(text: str) -> list[str]:
    """Shell lines of fenced blocks (continuations joined) and inline code spans."""
    out: list[str] = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.DOTALL):
        out += block.replace("\\\n", " ").splitlines()
    prose = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    out += re.findall(r"`([^`\n]+)`", prose)
    return out


def classgate_invocations(text: str) -> list[list[str]]:
    from classgate.agent.cli import main

    found = []
    for snippet in snippets(text):
        for part in re.split(r"&&|;|\|", snippet):
            words = shlex.split(part.split("#", 1)[0]) if "classgate" in part else []
            for i, word in enumerate(words):
                if word.endswith("classgate") and i + 1 < len(words) and words[i + 1] in main.commands:
                    found.append(words[i + 1 :])
    return found


def resolve(argv: list[str]) -> tuple[click.Command, list[str]]:
    from classgate.agent.cli import main

    command: click.Command = main
    rest = list(argv)
    while isinstance(command, click.Group) and rest and rest[0] in command.commands:
        command = command.commands[rest.pop(0)]
    return command, rest


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_classgate_command_shown_exists_with_its_options(doc: Path) -> None:
    invocations = classgate_invocations(doc.read_text())
    assert invocations, "the guide shows how to run classgate"
    for argv in invocations:
        command, rest = resolve(argv)
        assert not isinstance(command, click.Group), f"{argv}: incomplete command"
        accepted = {opt for param in command.params for opt in getattr(param, "opts", [])} | {"--help", "-h"}
        used = {word.split("=", 1)[0] for word in rest if word.startswith("-")}
        assert used <= accepted, f"`classgate {' '.join(argv)}`: no such option {used - accepted}"


def expand_braces(path: str) -> list[str]:
    match = re.search(r"\{([^}]*)\}", path)
    if not match:
        return [path]
    return [
        p
        for alt in match.group(1).split(",")
        for p in expand_braces(path[: match.start()] + alt + path[match.end() :])
    ]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_repository_file_named_exists(doc: Path) -> None:
    text = doc.read_text()
    named = set(re.findall(r"(?<![\w/])((?:deploy|docs|policies)/[\w./{},*-]+)", text))
    assert named
    for name in sorted(named):
        for path in expand_braces(name.rstrip(".,")):
            matches = list(REPO.glob(path)) if "*" in path else [REPO / path]
            assert matches and all(m.exists() for m in matches), (
                f"{doc.name} names {path}, which does not exist"
            )
