"""Every validation error path: YAML in, `line:col: message` out (positions are 1-based)."""

from __future__ import annotations

import pytest

from classgate.policies.document import read_document
from classgate.policies.errors import PolicyError

HEAD = "classgate: 1\nname: t\n"  # lines 1-2 of every case below

# (YAML after HEAD, expected "line:col: message fragment")
CASES = [
    # YAML itself
    ("rules: [\n", "4:1: YAML syntax"),
    # Indentation, said in an admin's words at the line that is off, once.
    ("default: allow\n  rules: []\n", "4:3: this key is indented 2 spaces, the keys above it 0 spaces"),
    ("tls:\n  inspect_groups: []\n   never_decrypt: []\n",
     "5:4: this key is indented 3 spaces, the keys above it 2 spaces: keys of one block must line up"),
    ("groups:\n  a:\n    networks: [10.0.0.0/8]\n   b:\n    networks: []\n",
     "6:4: this key is indented 3 spaces, the keys above it 2 spaces"),
    ("rules:\n  - {name: a, action: block}\n   - {name: b, action: block}\n",
     "5:4: this item is indented 3 spaces, the items above it 2 spaces"),
    ("rules:\n\t- x\n", "4:1: tabs are not allowed for indentation in YAML; indent with spaces"),
    ("groups:\n  a:\n  \tnetworks: []\n", "5:3: tabs are not allowed for indentation"),
    ("name2: 'a\tb'\n", "3:1: unknown key 'name2'"),  # a tab inside a value is no indentation
    ("---\nname: x\n", "4:1: the policy file holds 2 YAML documents"),
    ("default: allow\ndefault: block\n", "4:1: duplicate key 'default' (first at line 3)"),
    ("groups:\n  a: {networks: [10.0.0.0/8]}\n  a: {networks: [11.0.0.0/8]}\n", "5:3: duplicate key 'a'"),
    # unknown keys, with the nearest valid one
    ("rulez: []\n", "3:1: unknown key 'rulez' at the top level; did you mean 'rules'?"),
    ("categories:\n  a: {domain: [x.com]}\n", "4:7: unknown key 'domain' in a category; did you mean 'domains'?"),
    ("groups:\n  a: {network: [10.0.0.0/8]}\n", "4:7: unknown key 'network' in a group; did you mean 'networks'?"),
    ("rules:\n  - {name: r, action: block, categoris: []}\n",
     "4:30: unknown key 'categoris' in a rule; did you mean 'categories'?"),
    ("safe_search: {gogle: strict}\n", "3:15: unknown key 'gogle' in safe_search; did you mean 'google'?"),
    ("tls: {inspect: [a]}\n", "3:7: unknown key 'inspect' in tls; did you mean 'inspect_groups'?"),
    ("schedules:\n  s:\n    - {day: mon}\n", "5:8: unknown key 'day' in a schedule window; did you mean 'days'?"),
    ("overlay: false\ntimezone: UTC\nzzz: 1\n", "5:1: unknown key 'zzz' at the top level (known keys:"),
    # version and required keys
    ("", None),
    ("rules:\n  - {action: block}\n", "4:5: missing required key 'name' in a rule"),
    ("rules:\n  - {name: r}\n", "4:5: missing required key 'action' in a rule"),
    ("sources:\n  s: {format: ut1}\n", "4:6: missing required key 'path' in a source"),
    # types
    ("categories:\n  social: {domains: tiktok.com}\n", "4:21: expected a list, found 'tiktok.com'; write [tiktok.com]"),
    ("rules: {name: r}\n", "3:8: expected a list, found a mapping"),
    ("groups: [a, b]\n", "3:9: expected a mapping of group names, found a list"),
    ("rules:\n  - {name: r, action: block, locked: maybe}\n", "4:38: expected true or false, found 'maybe'"),
    ("rules:\n  - {name: [a], action: block}\n", "4:12: expected a string, found a list"),
    ("categories:\n  'a b': {domains: [x.com]}\n", "4:3: 'a b' is not a valid category name"),
    ("rules:\n  - {name: r, action: blok}\n", "4:23: 'blok' is not one of allow, block, warn; did you mean 'block'?"),
    ("default: deny\n", "3:10: 'deny' is not one of allow, block"),
    ("safe_search: {google: safe}\n", "3:23: 'safe' is not one of off, moderate, strict"),
    ("block_page: {language: fr}\n", "3:24: 'fr' is not one of vi, en"),
    ("sources:\n  s: {format: csv, path: x}\n", "4:15: 'csv' is not one of ut1, domains, hosts, adblock"),
    # time zone
    ("timezone: Asia/Hanoi\n", "3:11: unknown time zone 'Asia/Hanoi'"),
    ("timezone: ../../etc/passwd\n", "3:11: unknown time zone"),
    # sources and includes
    ("sources:\n  ut1: {format: ut1, path: /nonexistent/ut1}\n", "4:28: source 'ut1': /nonexistent/ut1 is not a folder"),
    ("sources:\n  f: {format: hosts, path: missing.txt}\n", "4:28: source 'f': no such file"),
    ("sources:\n  ut1: {format: ut1, path: '{UT1}'}\ncategories:\n  g: {include: [ut1/gamblng]}\n",
     "6:17: category 'g': list 'gamblng' not found in source 'ut1'"),
    ("sources:\n  ut1: {format: ut1, path: '{UT1}'}\ncategories:\n  g: {include: [ut1]}\n",
     "6:17: category 'g': name one list of the ut1 source"),
    ("sources:\n  ut1: {format: ut1, path: '{UT1}'}\ncategories:\n  g: {include: [ut2/gambling]}\n",
     "6:17: category 'g': unknown source 'ut2'; did you mean 'ut1'?"),
    ("sources:\n  ut1: {format: ut1, path: '{UT1}'}\ncategories:\n  g: {include: [ut1/../ut1]}\n",
     "6:17: category 'g': name one list"),
    # destinations
    ("categories:\n  a: {domains: ['a b.com']}\n", "4:17: category 'a': forbidden character"),
    ("categories:\n  a: {domains: ['*.x.com']}\n", "4:17: category 'a': write 'x.com' instead of '*.x.com'"),
    ("categories:\n  a: {domains: [x.com/path]}\n", "4:17: category 'a': 'x.com/path' is not a domain"),
    ("categories:\n  a: {urls: ['x.com/a?b=1']}\n", "4:14: category 'a': 'x.com/a?b=1': a urls entry is a host/path"),
    ("rules:\n  - {name: r, action: block, regex: ['(a']}\n", "4:38: rule 'r': bad regular expression '(a'"),
    ("rules:\n  - {name: r, action: block, domains: ['']}\n", "4:40: rule 'r': empty host"),
    # groups
    ("groups:\n  a: {networks: [10.10.1.0/16]}\n", ("4:18: group 'a': '10.10.1.0/16' has host bits set; did you mean "
                                                   "10.10.0.0/16?")),
    ("groups:\n  a: {networks: [10.0.0.0/33]}\n", "4:18: group 'a': '10.0.0.0/33' is not a network"),
    ("groups:\n  default: {networks: [10.0.0.0/8]}\n", "4:3: group name 'default' is reserved"),
    ("groups:\n  a: {networks: [10.0.0.0/8]}\n  b: {networks: [10.0.0.0/8]}\n",
     "5:3: network 10.0.0.0/8 is in both group 'a' and group 'b'"),
    # schedules
    ("schedules:\n  s:\n    - {days: mon-fry}\n", "5:14: schedule 's': unknown day 'fry'"),
    ("schedules:\n  s:\n    - {days: [mon, xyz]}\n", "5:20: schedule 's': unknown day 'xyz'"),
    ("schedules:\n  s:\n    - {from: '12:00', to: '11:00'}\n", "5:27: schedule 's': a window must start before it ends"),
    ("schedules:\n  s:\n    - {from: '25:00'}\n", "5:14: schedule 's': '25:00' is not a time of day"),
    ("schedules:\n  s:\n    - {from: 7h}\n", "5:14: '7h' is not valid here; write a time as \"HH:MM\""),
    ("schedules:\n  s:\n    - {from: '24:00'}\n", "5:14: schedule 's': '24:00' is not a time of day"),
    ("schedules:\n  s:\n    - {dates: 2026-12-18..2026-12-14}\n", "5:15: schedule 's': date range"),
    ("schedules:\n  s:\n    - {dates: 2026-02-30}\n", "5:15: schedule 's': '2026-02-30' is not a date"),
    ("schedules:\n  s: []\n", "4:3: schedule 's' has no time windows"),
    # rules and references
    ("rules:\n  - {name: r, action: block}\n  - {name: r, action: allow}\n", "5:12: duplicate rule name 'r' (first at line 4)"),
    ("categories:\n  adult: {domains: [x.com]}\nrules:\n  - {name: r, action: block, categories: [adlt]}\n",
     "6:43: rule 'r': unknown category 'adlt'; did you mean 'adult'?"),
    ("rules:\n  - {name: r, action: block, groups: [studnts]}\n", "4:39: rule 'r': unknown group 'studnts'"),
    ("rules:\n  - {name: r, action: block, when: klass}\n", "4:36: rule 'r': unknown schedule 'klass'"),
    ("rules:\n  - {name: 'a b', action: block}\n", "4:12: 'a b' is not valid here (a rule name"),
    ("tls: {inspect_groups: [nobody]}\n", "3:24: tls: unknown group 'nobody'"),
    ("tls: {never_decrypt: [banking]}\n", "3:23: tls: unknown category 'banking'"),
]


@pytest.mark.parametrize(("snippet", "expected"), CASES)
def test_error_is_reported_at_its_position(write_yaml, snippet, expected):
    path = write_yaml(HEAD + snippet)
    if expected is None:  # the minimal document is valid
        assert read_document(path).name == "t"
        return
    with pytest.raises(PolicyError) as info:
        read_document(path)
    messages = [str(p) for p in info.value.problems]
    assert any(m.startswith(f"{path}:{expected}") for m in messages), "\n".join(messages)
    if "indented" in expected or "tabs" in expected:
        assert len(messages) == 1 and "YAML syntax" not in messages[0], messages  # once, in our words


@pytest.mark.parametrize(("text", "expected"), [
    ("", "1:1: the policy file is empty"),
    ("classgate: 2\nname: t\n", "1:12: unsupported value 2; this classgate reads version 1"),
    ("classgate: one\nname: t\n", "1:12: expected a number, found 'one'"),
    ("name: t\n", "1:1: missing required key 'classgate' at the top level"),
    ("classgate: 1\n", "1:1: missing required key 'name' at the top level"),
    ("- a\n- b\n", "1:1: expected a mapping at the top level, found a list"),
    ("just text\n", "1:1: expected a mapping at the top level"),
    ("classgate: 1\noverlay: true\n", "2:1: this file is a school overlay (overlay: true)"),
    ("classgate: 1\nname: t\nrules: *nowhere\n", "3:8: YAML syntax"),
    ("classgate: 1\nname: t\nx: !!python/object:os.system {}\n", "3:1: unknown key 'x'"),
])
def test_document_level_errors(write_yaml, text, expected):
    path = write_yaml(text)
    with pytest.raises(PolicyError) as info:
        read_document(path)
    messages = [str(p) for p in info.value.problems]
    assert any(m.startswith(f"{path}:{expected}") for m in messages), "\n".join(messages)


def test_not_utf8_and_missing_file(tmp_path):
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("classgate: 1\nname: caf\xe9\n".encode("latin-1"))
    with pytest.raises(PolicyError, match="not UTF-8"):
        read_document(bad)
    with pytest.raises(PolicyError, match="cannot read the policy file"):
        read_document(tmp_path / "absent.yaml")


def test_every_problem_is_reported_at_once(write_yaml):
    path = write_yaml(HEAD + "default: deny\ntimezone: Mars/Olympus\ngroups:\n  a: {networks: [x]}\n")
    with pytest.raises(PolicyError) as info:
        read_document(path)
    assert [(p.line, p.col) for p in info.value.problems] == [(3, 10), (4, 11), (6, 18)]


@pytest.mark.parametrize(("snippet", "check"), [
    # YAML 1.1 reads these unquoted as a number / a boolean; we read what the admin wrote.
    ("schedules:\n  s:\n    - {from: 07:00, to: 13:30}\n", lambda d: d.schedules["s"].windows[0].start.hour == 7),
    ("safe_search: {youtube: off}\n", lambda d: d.safe_search.youtube == "off"),
    ("schedules:\n  s:\n    - days: sat,sun\n", lambda d: d.schedules["s"].windows[0].days == {5, 6}),
    ("schedules:\n  s:\n    - {dates: 2026-12-14}\n", lambda d: d.schedules["s"].windows[0].dates is not None),
    ("groups:\n  p: {networks: ['fd00:30::/64']}\n", lambda d: str(d.groups["p"].networks[0]) == "fd00:30::/64"),
    ("categories:\n  c: {domains: [WWW.Example.COM., 'bücher.example']}\n",
     lambda d: d.categories["c"].domains == ("www.example.com", "xn--bcher-kva.example")),
    ("categories:\n  c: {urls: ['HTTP://Example.com/A/../Games/']}\n",
     lambda d: d.categories["c"].urls == ("example.com/games/",)),
    ("sources:\n  ut1: {format: ut1, path: '{UT1}'}\ncategories:\n  c: {include: [ut1/porn]}\n",
     lambda d: d.categories["c"].include == ("ut1/adult",)),   # UT1 alias without the symlink
    ("rules:\n  - {name: r, action: block, when: [], groups: []}\n", lambda d: d.rules[0].when == ()),
])
def test_accepted_forms(write_yaml, snippet, check):
    assert check(read_document(write_yaml(HEAD + snippet)))
