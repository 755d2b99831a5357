"""schema.json: generated from the validator's own description, committed, and true to the examples."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from classgate.policies.document import read_document
from classgate.policies.errors import PolicyError
from classgate.policies.schema import SCHEMA_PATH, render
from tests.policies.lang_paths import DOCS_POLICY, SAMPLES


def test_committed_schema_is_up_to_date():
    assert SCHEMA_PATH.read_text(encoding="utf-8") == render(), "run: .venv/bin/python -m classgate.policies.schema"


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _doc_examples(doc: Path = DOCS_POLICY) -> list[tuple[str, str]]:
    text = doc.read_text(encoding="utf-8")
    blocks = re.findall(r"^```yaml\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)
    return [(f"{doc.name}#{i}", block) for i, block in enumerate(blocks)]


README = DOCS_POLICY.parents[1] / "README.md"
EXAMPLES = ([(p.name, p.read_text(encoding="utf-8")) for p in sorted(SAMPLES.glob("*.yaml"))]
            + _doc_examples() + _doc_examples(README))


def test_the_docs_have_examples():
    assert len(_doc_examples()) >= 8
    assert len(_doc_examples(README)) >= 1


@pytest.mark.parametrize(("name", "text"), EXAMPLES, ids=[n for n, _ in EXAMPLES])
def test_examples_are_valid_against_the_schema(validator, name, text):
    data = yaml.safe_load(text)
    assert isinstance(data, dict), f"{name} is not a mapping"
    if "classgate" not in data:  # a fragment of a Department policy: check it inside a minimal one
        data = {"classgate": 1, "name": "example", **data}
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(data)]
    assert errors == []


# Shape errors the validator reports: the schema must reject the same documents.
SHAPE_ERRORS = [
    "classgate: 1\nname: t\nrulez: []\n",
    "classgate: 2\nname: t\n",
    "classgate: 1\n",
    "classgate: 1\nname: t\nrules: [{name: r}]\n",
    "classgate: 1\nname: t\nrules: [{name: r, action: deny}]\n",
    "classgate: 1\nname: t\ncategories: {a: {domains: x.com}}\n",
    "classgate: 1\nname: t\ncategories: {a: {domain: [x.com]}}\n",
    "classgate: 1\nname: t\nsafe_search: {google: safe}\n",
    "classgate: 1\nname: t\nschedules: {s: [{from: '7h'}]}\n",
    "classgate: 1\nname: t\nblock_page: {language: fr}\n",
    "classgate: 1\noverlay: true\ntimezone: UTC\n",
    "classgate: 1\noverlay: true\nsafe_search: {locked: true}\n",
]


@pytest.mark.parametrize("text", SHAPE_ERRORS)
def test_schema_and_validator_reject_the_same_shapes(validator, write_yaml, text):
    assert list(validator.iter_errors(yaml.safe_load(text))), "the schema accepts it"
    with pytest.raises(PolicyError):
        path = write_yaml(text)
        overlay = None
        if "overlay: true" in text:
            overlay, path = path, write_yaml("classgate: 1\nname: d\n", "department.yaml")
        read_document(path, overlay)
