"""A small declarative description of YAML shapes, used both to check documents and to emit JSON Schema.

One description drives both, so "unknown key, did you mean ..." and the editor's schema never disagree.
Scalars are read from their raw text (as YAML 1.2 editors see them): `07:00` and `off` stay strings
instead of PyYAML's YAML 1.1 sexagesimal number and boolean.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from classgate.policies.errors import Problem
from classgate.policies.yamlsource import Val, position

_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_TRUE = {"true", "yes", "on", "y"}
_FALSE = {"false", "no", "off", "n"}


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if isinstance(node, yaml.ScalarNode) and node.tag == _NULL and node.style is None:
        return "nothing"
    return f"{node.value!r}"


class Spec:
    """The shape of one YAML value: `read` checks a node into a Val (None if unusable)."""

    description: str = ""

    def read(self, node: yaml.Node, file: str, problems: list[Problem]) -> Val | None:
        raise NotImplementedError

    def schema(self) -> dict[str, Any]:
        raise NotImplementedError

    def _with_doc(self, schema: dict[str, Any]) -> dict[str, Any]:
        if self.description:
            schema["description"] = self.description
        return schema

    def _scalar(self, node: yaml.Node, file: str, problems: list[Problem], want: str) -> str | None:
        if isinstance(node, yaml.ScalarNode) and not (node.tag == _NULL and node.style is None):
            return str(node.value)
        problems.append(Problem.at(position(file, node), f"expected {want}, found {_kind(node)}"))
        return None


@dataclass
class Str(Spec):
    description: str = ""
    pattern: str | None = None
    hint: str = ""  # said when the pattern does not match

    def read(self, node: yaml.Node, file: str, problems: list[Problem]) -> Val | None:
        text = self._scalar(node, file, problems, "a string")
        if text is None:
            return None
        if self.pattern and not re.fullmatch(self.pattern, text):
            problems.append(Problem.at(position(file, node), f"{text!r} is not valid here{self.hint}"))
            return None
        return Val(text, position(file, node))

    def schema(self) -> dict[str, Any]:
        s: dict[str, Any] = {"type": "string"}
        if self.pattern:
            s["pattern"] = f"^(?:{self.pattern})$"
        return self._with_doc(s)


@dataclass
class Enum(Spec):
    choices: tuple[str, ...] = ()
    description: str = ""

    def read(self, node: yaml.Node, file: str, problems: list[Problem]) -> Val | None:
        text = self._scalar(node, file, problems, "one of " + ", ".join(self.choices))
        if text is None:
            return None
        if text not in self.choices:
            near = difflib.get_close_matches(text, self.choices, n=1)
            tip = f"; did you mean {near[0]!r}?" if near else ""
            problems.append(Problem.at(position(file, node), f"{text!r} is not one of "
                                                             f"{', '.join(self.choices)}{tip}"))
            return None
        return Val(text, position(file, node))

    def schema(self) -> dict[str, Any]:
        return self._with_doc({"enum": list(self.choices)})


@dataclass
class Bool(Spec):
    description: str = ""

    def read(self, node: yaml.Node, file: str, problems: list[Problem]) -> Val | None:
        text = self._scalar(node, file, problems, "true or false")
        if text is None:
            return None
        if node.tag == _BOOL and text.lower() in _TRUE | _FALSE:
            return Val(text.lower() in _TRUE, position(file, node))
        problems.append(Problem.at(position(file, node), f"expected true or false, found {text!r}"))
        return None

    def schema(self) -> dict[str, Any]:
        return self._with_doc({"type": "boolean"})


@dataclass
class Int(Spec):
    description: str = ""
    const: int | None = None

    def read(self, node: yaml.Node, file: str, problems: list[Problem]) -> Val | None:
        text = self._scalar(node, file, problems, "a number")
        if text is None:
            return None
        try:
            value = int(text) if node.tag == _INT else None
        except ValueError:
            value = None
        if value is None:
            problems.append(Problem.at(position(file, node), f"expected a number, found {text!r}"))
            return None
        if self.const is not None and value != self.const:
            problems.append(Problem.at(position(file, node), f"unsupported value {value}; this classgate "
                                                             f"reads version {self.const}"))
            return None
        return Val(value, position(file, node))

    def schema(self) -> dict[str, Any]:
        return self._with_doc({"const": self.const} if self.const is not None else {"type": "integer"})


@dataclass
class ListOf(Spec):
    item: Spec = field(default_factory=Str)
    description: str = ""
    scalar_ok: bool = False  # a single scalar stands for a one-item list (documented where allowed)

    def read(self, node: yaml.Node, file: str, problems: list[Problem]) -> Val | None:
        if isinstance(node, yaml.ScalarNode) and self.scalar_ok and not isinstance(self.item, (Obj, MapOf)):
            one = self.item.read(node, file, problems)
            return Val([one], one.pos) if one is not None else None
        if not isinstance(node, yaml.SequenceNode):
            example = f"[{node.value}]" if isinstance(node, yaml.ScalarNode) and node.value else "[...]"
            problems.append(Problem.at(position(file, node), f"expected a list, found {_kind(node)}; "
                                                             f"write {example}"))
            return None
        items = [self.item.read(child, file, problems) for child in node.value]
        return Val([v for v in items if v is not None], position(file, node))

    def schema(self) -> dict[str, Any]:
        listed = {"type": "array", "items": self.item.schema()}
        if self.scalar_ok:
            return self._with_doc({"oneOf": [self.item.schema(), listed]})
        return self._with_doc(listed)


NAME_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}"


@dataclass
class MapOf(Spec):
    """A mapping from names (of categories, groups...) to values of one shape."""

    value: Spec = field(default_factory=Str)
    description: str = ""
    what: str = "name"

    def read(self, node: yaml.Node, file: str, problems: list[Problem]) -> Val | None:
        if not isinstance(node, yaml.MappingNode):
            problems.append(Problem.at(position(file, node), f"expected a mapping of {self.what}s, "
                                                             f"found {_kind(node)}"))
            return None
        out: dict[str, Val] = {}
        for key, child in node.value:
            if not isinstance(key, yaml.ScalarNode) or not re.fullmatch(NAME_PATTERN, key.value):
                shown = key.value if isinstance(key, yaml.ScalarNode) else _kind(key)
                problems.append(Problem.at(position(file, key), f"{shown!r} is not a valid {self.what} "
                                                                "(letters, digits, _ . -; at most 64)"))
                continue
            if key.value in out:  # reported by the duplicate-key pass; keep the first
                continue
            val = self.value.read(child, file, problems)
            if val is not None:
                val.key_pos = position(file, key)
                out[key.value] = val
        return Val(out, position(file, node))

    def schema(self) -> dict[str, Any]:
        return self._with_doc({"type": "object", "propertyNames": {"pattern": f"^{NAME_PATTERN}$"},
                               "additionalProperties": self.value.schema()})


@dataclass
class Obj(Spec):
    """A mapping with known keys; an unknown key is an error with the nearest valid key suggested."""

    fields: dict[str, Spec] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    description: str = ""
    what: str = "here"  # "in a rule", "in safe_search" ...

    def read(self, node: yaml.Node, file: str, problems: list[Problem]) -> Val | None:
        if not isinstance(node, yaml.MappingNode):
            problems.append(Problem.at(position(file, node), f"expected a mapping {self.what}, "
                                                             f"found {_kind(node)}"))
            return None
        out: dict[str, Val] = {}
        for key, child in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else None
            spec = self.fields.get(name) if isinstance(name, str) else None
            if spec is None or not isinstance(name, str):
                near = difflib.get_close_matches(str(name), list(self.fields), n=1, cutoff=0.6)
                tip = f"; did you mean {near[0]!r}?" if near else f" (known keys: {', '.join(self.fields)})"
                problems.append(Problem.at(position(file, key), f"unknown key {name!r} {self.what}{tip}"))
                continue
            if name in out:
                continue
            val = spec.read(child, file, problems)
            if val is not None:
                val.key_pos = position(file, key)
                out[name] = val
        missing = [k for k in self.required if k not in out and not _present(node, k)]
        for key in missing:
            problems.append(Problem.at(position(file, node), f"missing required key {key!r} {self.what}"))
        return Val(out, position(file, node))

    def schema(self) -> dict[str, Any]:
        s: dict[str, Any] = {"type": "object", "properties": {k: v.schema() for k, v in self.fields.items()},
                             "additionalProperties": False}
        if self.required:
            s["required"] = list(self.required)
        return self._with_doc(s)


def _present(node: yaml.MappingNode, key: str) -> bool:
    """A required key that is present but invalid was already reported; do not also call it missing."""
    return any(isinstance(k, yaml.ScalarNode) and k.value == key for k, _ in node.value)
