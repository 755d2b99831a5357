"""Paths the policy-language tests share (a uniquely named module: test folders have no __init__.py)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "policies" / "samples"
SAMPLE_UT1 = SAMPLES / "lists" / "ut1"
SHARED_UT1 = REPO.parent / "shared" / "data" / "ut1"
DOCS_POLICY = REPO / "docs" / "policy.md"
