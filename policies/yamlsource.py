"""YAML with positions: compose the node tree, catch what PyYAML lets slip (duplicate keys).

PyYAML's loaders forget where a value came from and silently keep the last of two equal keys; an admin
needs `file:line:col` on every problem, so we work on `yaml.compose` nodes (0-based marks, reported
1-based) and turn them into `Val` trees in `policies.shapes`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from classgate.policies.errors import Position, Problem

# A policy is a few kilobytes; a multi-megabyte "policy" is a mistake (or a list pasted in the wrong
# place) and composing it would only waste memory on the gateway.
MAX_POLICY_BYTES = 4 * 1024 * 1024


@dataclass
class Val:
    """A checked YAML value with where it was written.

    `value` is a str, int, bool or None for scalars, `list[Val]` for sequences and `dict[str, Val]` for
    mappings. `key_pos` is where the mapping key naming this value stands, when there is one.
    """

    value: Any
    pos: Position
    key_pos: Position | None = None

    @property
    def where(self) -> Position:
        """The position to report a problem about this entry as a whole (its key, if it has one)."""
        return self.key_pos or self.pos


def position(file: str, node: yaml.Node) -> Position:
    return Position(file, node.start_mark.line + 1, node.start_mark.column + 1)


def read_text(path: Path, problems: list[Problem]) -> str | None:
    """The file's text, or None with a problem saying why it cannot be read."""
    where = Position(str(path), 1, 1)
    try:
        data = path.read_bytes()
    except OSError as exc:
        problems.append(Problem.at(where, f"cannot read the policy file: {exc.strerror or exc}"))
        return None
    if len(data) > MAX_POLICY_BYTES:
        problems.append(Problem.at(where, f"the policy file is {len(data)} bytes; more than "
                                          f"{MAX_POLICY_BYTES} is not a policy (lists belong in `sources:`)"))
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.append(Problem.at(where, f"the policy file is not UTF-8 text (byte {exc.start})"))
        return None


def compose(text: str, file: str, problems: list[Problem]) -> yaml.Node | None:
    """The YAML node tree of one document, or None with the syntax problem (and duplicate keys) added."""
    tab = tab_indentation(text, file)
    if tab is not None:  # said in our words, once: PyYAML's is "found character that cannot start any token"
        problems.append(tab)
        return None
    try:
        # CSafeLoader when libyaml is present: same nodes, faster; never the full (unsafe) loader.
        loader_cls = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        nodes = list(yaml.compose_all(text, Loader=loader_cls))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        misaligned = indentation_problem(text, file, mark.line) if mark else None
        if misaligned is not None:
            problems.append(misaligned)
            return None
        where = Position(file, mark.line + 1, mark.column + 1) if mark else Position(file, 1, 1)
        message = f"YAML syntax: {exc.problem or exc.context}"
        if exc.context and exc.problem:
            message += f" ({exc.context})"
        problems.append(Problem.at(where, message))
        return None
    except yaml.YAMLError as exc:  # reader errors (control characters) carry no mark
        problems.append(Problem.at(Position(file, 1, 1), f"YAML: {exc}"))
        return None
    if len(nodes) != 1:
        what = "is empty" if not nodes else f"holds {len(nodes)} YAML documents (`---`); write one"
        where = position(file, nodes[1]) if len(nodes) > 1 else Position(file, 1, 1)
        problems.append(Problem.at(where, f"the policy file {what}"))
        return None
    _check_duplicate_keys(nodes[0], file, problems)
    return nodes[0]


def tab_indentation(text: str, file: str) -> Problem | None:
    """The first line indented with a tab (YAML forbids tabs there), as a problem at the tab."""
    for number, line in enumerate(text.splitlines(), 1):
        lead = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in lead and line.strip():
            return Problem.at(Position(file, number, lead.index("\t") + 1),
                              "tabs are not allowed for indentation in YAML; indent with spaces")
    return None


def indentation_problem(text: str, file: str, error_line: int) -> Problem | None:
    """When YAML fails at a line that lines up with no block above it, say that, in an admin's words.

    `error_line` is 0-based (PyYAML's mark). None when the indentation is not the cause."""
    lines = text.splitlines()
    if not 0 <= error_line < len(lines):
        return None
    line = lines[error_line]
    indent = len(line) - len(line.lstrip(" "))
    levels: list[int] = []  # the indentation of the blocks open at this point, outermost first
    opens_block = False
    for previous in lines[:error_line]:
        content = previous.split(" #", 1)[0].rstrip()
        if not content.strip() or content.lstrip().startswith("#"):
            continue
        level = len(content) - len(content.lstrip(" "))
        while levels and levels[-1] > level:
            levels.pop()
        if not levels or levels[-1] < level:
            levels.append(level)
        opens_block = content.endswith(":") or content.lstrip() == "-"
    if not levels or indent in levels or (opens_block and indent > levels[-1]):
        return None
    above = max((lvl for lvl in levels if lvl < indent), default=levels[0])
    noun = "item" if line.lstrip().startswith("-") else "key"

    def spaces(n: int) -> str:
        return f"{n} space{'s' if n != 1 else ''}"

    return Problem.at(Position(file, error_line + 1, indent + 1),
                      f"this {noun} is indented {spaces(indent)}, the {noun}s above it {spaces(above)}: "
                      f"{noun}s of one block must line up")


def _check_duplicate_keys(root: yaml.Node, file: str, problems: list[Problem]) -> None:
    # Iterative: a hostile document can nest deeper than Python's recursion limit.
    stack = [root]
    seen_nodes: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen_nodes:  # anchors/aliases share nodes (and may form cycles)
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys: dict[str, yaml.Node] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    first = keys.get(key.value)
                    if first is not None:
                        line = first.start_mark.line + 1
                        problems.append(Problem.at(position(file, key), f"duplicate key {key.value!r} "
                                                                        f"(first at line {line})"))
                    else:
                        keys[key.value] = key
                stack.append(value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
