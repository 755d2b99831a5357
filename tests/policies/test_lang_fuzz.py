"""Random edits of the shipped sample never make reading it raise anything but PolicyError."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from classgate.policies.errors import PolicyError
from classgate.policies.loader import load_policy
from tests.policies.lang_paths import SAMPLE_UT1, SAMPLES

DEPARTMENT = (SAMPLES / "department.yaml").read_text(encoding="utf-8").replace(
    "path: lists/ut1", f"path: '{SAMPLE_UT1}'")
SCHOOL = (SAMPLES / "school.yaml").read_text(encoding="utf-8")
# Characters and tokens that change YAML structure, plus values that are wrong in interesting ways.
TOKENS = list("{}[]:,-'\"#&*!|>%@` \t\n") + [
    "locked: true", "overlay: true", "classgate: 2", "~", "null", "- ", "  ", "*a", "&a ", "!!binary ",
    "24:00", "25:99", "mon-sun", "10.0.0.0/33", "fd00::/200", "ut1/../..", "..", "/", "\x00", "é", "…",
    "2026-02-30", "harmful", "students", "default", "exam_week", "<<: *a", "? ", "yes", "off", "1e9",
]

mutation = st.one_of(
    st.tuples(st.just("delete"), st.integers(0, 10_000)),
    st.tuples(st.just("duplicate"), st.integers(0, 10_000)),
    st.tuples(st.just("swap"), st.integers(0, 10_000), st.integers(0, 10_000)),
    st.tuples(st.just("insert"), st.integers(0, 100_000), st.sampled_from(TOKENS)),
    st.tuples(st.just("replace"), st.integers(0, 100_000), st.integers(1, 12), st.sampled_from(TOKENS)),
)


def mutate(text: str, edits) -> str:
    for edit in edits:
        lines = text.split("\n")
        kind = edit[0]
        if kind == "delete":
            del lines[edit[1] % len(lines)]
        elif kind == "duplicate":
            i = edit[1] % len(lines)
            lines.insert(i, lines[i])
        elif kind == "swap":
            i, j = edit[1] % len(lines), edit[2] % len(lines)
            lines[i], lines[j] = lines[j], lines[i]
        else:
            pos = edit[1] % (len(text) + 1)
            cut = edit[2] if kind == "replace" else 0
            text = text[:pos] + edit[-1] + text[pos + cut:]
            continue
        text = "\n".join(lines)
    return text


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def _load_and_decide(department: str, school: str | None, folder) -> None:
    dept_path = folder / "department.yaml"
    dept_path.write_text(department, encoding="utf-8")
    school_path = None
    if school is not None:
        school_path = folder / "school.yaml"
        school_path.write_text(school, encoding="utf-8")
    try:
        policy = load_policy(dept_path, overlay=school_path)
    except PolicyError as exc:
        assert exc.problems and all(p.line >= 0 and p.message for p in exc.problems)
        return
    d = policy.decide("http://blocked.example/", client="10.10.1.2", at=dt.datetime(2026, 11, 23, 9))
    assert d.action in ("allow", "block")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(mutation, min_size=1, max_size=3))
def test_mutated_department_policy(folder, edits):
    _load_and_decide(mutate(DEPARTMENT, edits), None, folder)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(mutation, min_size=1, max_size=3))
def test_mutated_school_overlay(folder, edits):
    _load_and_decide(DEPARTMENT, mutate(SCHOOL, edits), folder)


@pytest.mark.parametrize("text", [
    "a: &a [*a]\n",                                   # recursive alias
    "classgate: 1\nname: t\nrules: &r\n  - *r\n",
    "[" * 5000 + "]" * 5000,                          # deep nesting
    "classgate: 1\nname: t\ngroups: {a: {networks: &n [10.0.0.0/8]}, b: {networks: *n}}\n",
    "\ufeffclassgate: 1\nname: t\n",                  # a byte-order mark is fine
    "classgate: 1\nname: t\ncategories: {c: {domains: [" + "a." * 200 + "com]}}\n",
])
def test_hostile_documents(folder, text):
    _load_and_decide(text, None, folder)
