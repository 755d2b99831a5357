"""JSON Schema of the policy format, generated from policies.keys (the validator's own description).

`python -m classgate.policies.schema` rewrites policies/schema.json; a test fails when the committed file is stale.
Admins point their editor at it (e.g. `# yaml-language-server: $schema=.../schema.json`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from classgate.policies.keys import DEPARTMENT, OVERLAY

SCHEMA_PATH = Path(__file__).with_name("schema.json")


def build_schema() -> dict[str, Any]:
    """One schema for both kinds of file: `overlay: true` selects the school overlay shape."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://classgate.example/schema/policy-1.json",
        "title": "classgate policy",
        "description": "A Department policy, or with `overlay: true` a school overlay. See docs/policy.md.",
        "type": "object",
        "if": {"properties": {"overlay": {"const": True}}, "required": ["overlay"]},
        "then": OVERLAY.schema(),
        "else": DEPARTMENT.schema(),
    }


def render() -> str:
    return json.dumps(build_schema(), indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def main() -> int:
    SCHEMA_PATH.write_text(render(), encoding="utf-8")
    print(f"wrote {SCHEMA_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
