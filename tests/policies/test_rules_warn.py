"""`action: warn`, `warn: {minutes}` and `quota: {minutes, per}` on rules: what they read as, and every error
at its `file:line:col`."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from classgate.policies import load_policy
from classgate.policies.document import read_document
from classgate.policies.errors import PolicyError
from classgate.policies.model import QuotaSettings, WarnSettings
from classgate.policies.schema import SCHEMA_PATH

HEAD = "classgate: 1\nname: t\ncategories:\n  games: {domains: [games.test]}\nrules:\n"  # lines 1-5


# (the rule, on line 6) -> (warn, quota) as read
VALID = [
    ("  - {name: r, action: warn, categories: [games]}\n", WarnSettings(10), None),
    ("  - {name: r, action: warn, categories: [games], warn: {minutes: 15}}\n", WarnSettings(15), None),
    ("  - {name: r, action: warn, categories: [games], warn: {}}\n", WarnSettings(10), None),
    ("  - {name: r, action: warn, categories: [games], warn: {minutes: 480}}\n", WarnSettings(480), None),
    ("  - {name: r, action: allow, categories: [games], quota: {minutes: 30, per: day}}\n", None,
     QuotaSettings(30, "day")),
    ("  - {name: r, action: allow, categories: [games], quota: {minutes: 1}}\n", None, QuotaSettings(1)),
    ("  - {name: r, action: warn, categories: [games], quota: {minutes: 1440}}\n", WarnSettings(10),
     QuotaSettings(1440)),
    ("  - {name: r, action: block, categories: [games]}\n", None, None),
]


@pytest.mark.parametrize(("rule", "warn", "quota"), VALID)
def test_rule_settings_as_read(write_yaml, rule, warn, quota):
    doc = read_document(write_yaml(HEAD + rule))
    assert (doc.rules[0].warn, doc.rules[0].quota) == (warn, quota)


# (the rule, on line 6) -> "line:col: message fragment"
ERRORS = [
    ("  - {name: r, action: warm}\n", "6:23: 'warm' is not one of allow, block, warn; did you mean 'warn'?"),
    ("  - {name: r, action: block, warn: {minutes: 5}}\n",
     "6:36: rule 'r': `warn:` is for rules with `action: warn` (this one says block)"),
    ("  - {name: r, action: allow, warn: {}}\n", "6:36: rule 'r': `warn:` is for rules with `action: warn` (this one says allow)"),
    ("  - {name: r, action: warn, warn: {minutes: 0}}\n", "6:45: rule 'r': 0 minutes is out of range; write 1 to 480"),
    ("  - {name: r, action: warn, warn: {minutes: 481}}\n", "6:45: rule 'r': 481 minutes is out of range"),
    ("  - {name: r, action: warn, warn: {minutes: ten}}\n", "6:45: expected a number, found 'ten'"),
    ("  - {name: r, action: warn, warn: {minute: 5}}\n", "6:36: unknown key 'minute' in a rule's warn; did you mean"),
    ("  - {name: r, action: warn, warn: 5}\n", "6:35: expected a mapping in a rule's warn, found '5'"),
    ("  - {name: r, action: block, quota: {minutes: 30}}\n",
     "6:37: rule 'r': a quota is time a device may use sites, so it goes on an allow or warn rule"),
    ("  - {name: r, action: allow, quota: {minutes: 0}}\n", "6:47: rule 'r': 0 minutes is out of range; write 1 to 1440"),
    ("  - {name: r, action: allow, quota: {minutes: -5}}\n", "6:47: rule 'r': -5 minutes is out of range"),
    ("  - {name: r, action: allow, quota: {minutes: 1441}}\n", "6:47: rule 'r': 1441 minutes is out of range"),
    ("  - {name: r, action: allow, quota: {per: day}}\n", "6:37: missing required key 'minutes' in a rule's quota"),
    ("  - {name: r, action: allow, quota: {minutes: 30, per: week}}\n", "6:56: 'week' is not one of day"),
    ("  - {name: r, action: allow, quota: {minutes: 30, every: day}}\n",
     "6:51: unknown key 'every' in a rule's quota (known keys: minutes, per)"),
    ("  - {name: r, action: allow, quota: 30}\n", "6:37: expected a mapping in a rule's quota, found '30'"),
]


@pytest.mark.parametrize(("rule", "expected"), ERRORS)
def test_errors_name_the_line_and_column(write_yaml, rule, expected):
    path = write_yaml(HEAD + rule)
    with pytest.raises(PolicyError) as caught:
        read_document(path)
    messages = [str(p) for p in caught.value.problems]
    assert any(m.startswith(f"{path}:") and expected in m for m in messages), messages


def test_default_cannot_be_warn(write_yaml):
    """A warn needs a rule (its minutes, its reason): the default stays allow or block."""
    with pytest.raises(PolicyError, match="'warn' is not one of allow, block"):
        read_document(write_yaml("classgate: 1\nname: t\ndefault: warn\n"))


@pytest.mark.parametrize(
    ("rule", "valid"),
    [(rule, True) for rule, _, _ in VALID]
    + [("  - {name: r, action: warn, warn: {minutes: 5, for: 2}}\n", False),
       ("  - {name: r, action: allow, quota: {per: day}}\n", False),
       ("  - {name: r, action: allow, quota: {minutes: 5, per: week}}\n", False)],
)
def test_schema_agrees_on_the_shapes(rule, valid):
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))
    assert (not list(validator.iter_errors(yaml.safe_load(HEAD + rule)))) == valid


@pytest.mark.parametrize(
    ("url", "client", "action", "rule"),
    [
        ("http://games.test/", "10.0.0.5", "warn", "think"),
        ("http://www.games.test/play", "10.0.0.5", "warn", "think"),
        ("http://games.test/", "10.9.0.5", "allow", None),  # not in the rule's group
        ("http://video.test/", "10.0.0.5", "allow", "video-time"),  # a quota rule allows (the proxy counts)
    ],
)
def test_engine_decides_warn_and_names_the_rule(write_yaml, url, client, action, rule):
    policy = load_policy(write_yaml(
        "classgate: 1\nname: t\ncategories:\n  games: {domains: [games.test]}\n  video: {domains: [video.test]}\n"
        "groups:\n  students: {networks: [10.0.0.0/16]}\n"
        "rules:\n  - {name: think, action: warn, groups: [students], categories: [games], warn: {minutes: 5}}\n"
        "  - {name: video-time, action: allow, groups: [students], categories: [video], quota: {minutes: 30}}\n"))
    d = policy.decide(url, client=client)
    assert (d.action, d.rule) == (action, rule)
    assert d.allowed == (action == "allow") and not d.blocked
    found = policy.rule(d.rule)
    assert (found.name if found else None) == rule
