"""School overlays: precedence, what a school may add or tighten, and the locks it cannot break."""

from __future__ import annotations

import ipaddress

import pytest

from classgate.policies.document import read_document
from classgate.policies.errors import PolicyError
from tests.policies.lang_paths import SAMPLES

DEPARTMENT = """\
classgate: 1
name: dept
sources:
  ut1: {format: ut1, path: '{UT1}'}
categories:
  adult:     {include: [ut1/adult], locked: true}
  gambling:  {include: [ut1/gambling]}
  social:    {include: [ut1/social_networks]}
  education: {domains: [edu.vn]}
groups:
  students: {networks: [10.10.0.0/16]}
  phones:   {networks: [10.30.0.0/16]}
schedules:
  class_hours:
    - {days: mon-fri, from: "07:00", to: "11:30"}
  exam_week:
    - {dates: 2026-12-14..2026-12-18}
rules:
  - {name: harmful, action: block, categories: [adult, gambling], locked: true}
  - {name: exam-lockdown, action: block, groups: [students, phones], when: exam_week, locked: true}
  - {name: education, action: allow, categories: [education]}
  - {name: focus, action: block, groups: [students], when: class_hours, categories: [social]}
default: allow
safe_search: {google: strict, youtube: moderate, locked: true}
tls: {inspect_groups: [students], never_decrypt: [education]}
block_page: {contact: department, language: vi}
"""
OVERLAY_HEAD = "classgate: 1\noverlay: true\n"  # lines 1-2 of every overlay below


@pytest.fixture
def department(write_yaml):
    return write_yaml(DEPARTMENT, "department.yaml")


def test_shipped_sample_precedence():
    doc = read_document(SAMPLES / "department.yaml", SAMPLES / "school.yaml")
    assert [(r.tier, r.name) for r in doc.rules] == [
        ("locked", "harmful"), ("locked", "exam-sites"), ("locked", "exam-lockdown"),
        ("school", "library-quiet"), ("school", "no-streaming-in-class"), ("school", "lunch-games"),
        ("department", "education"), ("department", "phones-in-class"), ("department", "focus-in-class"),
    ]
    assert doc.warnings == ()
    assert doc.files == ((SAMPLES / "department.yaml").resolve(), (SAMPLES / "school.yaml").resolve())


def test_department_alone_keeps_locked_rules_first():
    doc = read_document(SAMPLES / "department.yaml")
    assert [r.tier for r in doc.rules] == ["locked"] * 3 + ["department"] * 3


def test_overlay_adds_and_tightens(department, write_yaml):
    overlay = write_yaml(OVERLAY_HEAD + """\
name: school
groups:
  students: {networks: [192.168.10.0/24]}
  library:  {networks: [192.168.20.0/24]}
categories:
  social:    {domains: [extra-social.example]}
  streaming: {domains: [youtube.com]}
schedules:
  lunch:
    - {days: mon-fri, from: "11:30", to: "13:00"}
rules:
  - {name: no-streaming, action: block, groups: [library], categories: [streaming], when: lunch}
default: block
safe_search: {youtube: strict}
tls: {inspect_groups: [library]}
block_page: {contact: "room 204"}
""", "school.yaml")
    doc = read_document(department, overlay)
    assert doc.groups["students"].networks == (ipaddress.ip_network("10.10.0.0/16"),
                                              ipaddress.ip_network("192.168.10.0/24"))
    assert doc.groups["students"].origin == "department"
    assert doc.groups["library"].origin == "school"
    assert doc.categories["social"].domains == ("extra-social.example",)
    assert doc.categories["social"].include == ("ut1/social_networks",)
    assert doc.categories["streaming"].origin == "school"
    assert "lunch" in doc.schedules
    assert [r.name for r in doc.rules] == ["harmful", "exam-lockdown", "no-streaming", "education", "focus"]
    assert doc.default == "block"
    assert (doc.safe_search.google, doc.safe_search.youtube, doc.safe_search.locked) == ("strict", "strict", True)
    assert doc.tls.inspect_groups == {"students", "library"}
    assert doc.tls.never_decrypt == {"education"}
    assert (doc.block_page.contact, doc.block_page.language) == ("room 204", "vi")
    assert doc.name == "dept"


# (overlay after OVERLAY_HEAD, expected "line:col: message fragment")
LOCK_CASES = [
    ("rules:\n  - {name: harmful, action: allow, categories: [gambling]}\n",
     "4:12: rule 'harmful' is locked by the Department; an overlay cannot redefine it"),
    ("rules:\n  - {name: education, action: block}\n", "4:12: rule 'education' is already a Department rule"),
    ("rules:\n  - {name: mine, action: block, locked: true}\n", "4:12: rule 'mine': only the Department can lock"),
    ("safe_search: {google: off}\n", ("3:23: safe_search is locked by the Department: google cannot be lowered "
                                     "from strict to off")),
    ("safe_search: {youtube: 'off'}\n", "3:24: safe_search is locked by the Department: youtube cannot be lowered"),
    ("safe_search: {locked: false}\n", "3:15: unknown key 'locked' in safe_search"),
    ("categories:\n  adult: {domains: [ok.example]}\n", "4:3: category 'adult' is locked by the Department"),
    ("categories:\n  mine: {domains: [x.example], locked: true}\n", "4:3: category 'mine': only the Department can lock"),
    ("schedules:\n  class_hours:\n    - {days: sat}\n", "4:3: schedule 'class_hours' is defined by the Department"),
    ("sources:\n  ut1: {format: ut1, path: '{UT1}'}\n", "4:3: source 'ut1' is already defined by the Department"),
    ("timezone: UTC\n", "3:1: unknown key 'timezone' in a school overlay"),
    ("groups:\n  mine: {networks: [10.10.0.0/16]}\n", ("4:3: network 10.10.0.0/16 is in both group 'students' and "
                                                    "group 'mine'")),
    ("rules:\n  - {name: r, action: block, categories: [streaming]}\n", "4:43: rule 'r': unknown category 'streaming'"),
    ("tls: {never_decrypt: [nope]}\n", "3:23: tls: unknown category 'nope'"),
]


@pytest.mark.parametrize(("snippet", "expected"), LOCK_CASES)
def test_overlay_cannot_loosen(department, write_yaml, snippet, expected):
    overlay = write_yaml(OVERLAY_HEAD + snippet, "school.yaml")
    with pytest.raises(PolicyError) as info:
        read_document(department, overlay)
    messages = [str(p) for p in info.value.problems]
    assert any(m.startswith(f"{overlay}:{expected}") for m in messages), "\n".join(messages)


@pytest.mark.parametrize("text", ["classgate: 1\nname: school\n", "classgate: 1\noverlay: false\nname: x\n"])
def test_overlay_must_say_so(department, write_yaml, text):
    overlay = write_yaml(text, "school.yaml")
    with pytest.raises(PolicyError) as info:
        read_document(department, overlay)
    assert [str(p) for p in info.value.problems] == [
        f"{overlay}:1:1: a school overlay must say `overlay: true` (a Department policy cannot be used as an overlay)"
    ]


def test_overlay_may_use_the_departments_sources_and_its_own(department, write_yaml, tmp_path):
    (tmp_path / "extra.txt").write_text("extra.example\n")
    overlay = write_yaml(OVERLAY_HEAD + """\
sources:
  mine: {format: domains, path: extra.txt}
categories:
  dating: {include: [ut1/social_networks, mine]}
""", "school.yaml")
    doc = read_document(department, overlay)
    assert doc.categories["dating"].include == ("ut1/social_networks", "mine")
    assert doc.sources["mine"].path == (tmp_path / "extra.txt").resolve()
    assert doc.sources["mine"].origin == "school"


# (school rule, the locked rule named in the warning or None)
SHADOW_CASES = [
    ("{name: r, action: allow, categories: [gambling]}", "harmful"),
    ("{name: r, action: allow, categories: [adult, gambling], groups: [students]}", "harmful"),
    ("{name: r, action: allow, groups: [students], when: exam_week}", "exam-lockdown"),
    ("{name: r, action: allow, groups: [phones], when: exam_week, categories: [social]}", "exam-lockdown"),
    ("{name: r, action: allow, categories: [gambling, social]}", None),      # social can still be allowed
    ("{name: r, action: allow, groups: [students]}", None),                   # outside exam week it decides
    ("{name: r, action: allow, when: exam_week}", None),                      # other groups in exam week
    ("{name: r, action: block, categories: [social]}", None),
]


@pytest.mark.parametrize(("rule", "shadowed_by"), SHADOW_CASES)
def test_rule_behind_a_lock_is_a_warning(department, write_yaml, rule, shadowed_by):
    overlay = write_yaml(OVERLAY_HEAD + f"rules:\n  - {rule}\n", "school.yaml")
    doc = read_document(department, overlay)
    messages = [str(w) for w in doc.warnings]
    if shadowed_by is None:
        assert messages == []
    else:
        assert messages == [(f"{overlay}:4:12: warning: rule 'r' can never take effect: the Department's locked "
                            f"rule {shadowed_by!r} always matches first")]


def test_locked_rule_written_late_is_a_warning(write_yaml):
    path = write_yaml("classgate: 1\nname: t\nrules:\n  - {name: a, action: allow}\n"
                      "  - {name: b, action: block, locked: true}\n")
    doc = read_document(path)
    assert [r.name for r in doc.rules] == ["b", "a"]
    assert [str(w) for w in doc.warnings] == [(f"{path}:5:12: warning: locked rule 'b' is written after rule 'a' "
                                              "but locked rules always come first; move it up so the file reads "
                                              "in the order rules apply")]


def test_department_file_given_as_overlay_and_overlay_as_department(department, write_yaml):
    with pytest.raises(PolicyError, match="must say `overlay: true`"):
        read_document(department, department)
    overlay = write_yaml(OVERLAY_HEAD, "school.yaml")
    with pytest.raises(PolicyError, match="give it with --overlay"):
        read_document(overlay)
